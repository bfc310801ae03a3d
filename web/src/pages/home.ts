// `/`: the search box, the city's headline figures, featured datasets and recent updates.

import { apiUrl, getJson, type Rows, type SearchResult } from '../api';
import { h, replace } from '../dom';
import { formatCompact, formatNumber, t } from '../i18n';
import { errorBox, setTitle } from '../layout';
import { datasetCard, searchForm } from './common';

/** Datasets shown first: the framework layers, the live network and the programme figures. */
const FEATURED = ['districts', 'buildings', 'smart-lampposts', 'air-quality-monitoring-stations', 'hospitals', 'innovation-funding'];

interface Figure {
  label: string;
  value: number;
  /** The language of the label when it comes from the data (the figures are published in English). */
  lang?: string;
  note?: string;
}

/** The programme figures shown on the front page: rows of the smart-city figures dataset. */
const PROGRAMME_ROWS = [2, 4, 5, 8];

async function programmeFigures(): Promise<Figure[]> {
  const rows = await getJson<Rows>(apiUrl('/api/v1/datasets/smart-city/resources/figures/rows', { _id__in: PROGRAMME_ROWS.join(',') }));
  return rows.records.map((r) => ({
    label: `${String(r.programme)}: ${String(r.measure)}`,
    value: Number(r.value),
    lang: 'en',
    note: `${String(r.notes ?? '')} (${String(r.as_at ?? '')})`.trim(),
  }));
}

/** The counts of the catalogue `all` (fetched once for the page) and of the live datastreams. */
async function figures(all: SearchResult): Promise<Figure[]> {
  const sta = await getJson<{ '@iot.count'?: number }>(apiUrl('/sta/v1.1/Datastreams', { $count: 'true', $top: 0 })).catch(
    () => ({ '@iot.count': 0 }),
  );
  const features = all.datasets
    .flatMap((d) => d.resources)
    .filter((r) => r.format.toLowerCase() === 'geojson')
    .reduce((n, r) => n + r.row_count, 0);
  return [
    { label: t('fig.datasets'), value: all.count },
    { label: t('fig.organizations'), value: (all.facets.organization ?? []).length },
    { label: t('fig.features'), value: features },
    { label: t('fig.sensors'), value: sta['@iot.count'] ?? 0 },
  ];
}

export async function render(main: HTMLElement): Promise<void> {
  setTitle('');
  const figs = h('div', { 'aria-busy': 'true' }, t('loading'));
  const featured = h('div', { class: 'grid' }, t('loading'));
  const recent = h('ul', { class: 'plain' });
  const allLink = h('a', { href: '/datasets' }, t('nav.datasets'));
  replace(
    main,
    h(
      'section',
      { class: 'hero', 'aria-labelledby': 'home-title' },
      h('h1', { id: 'home-title' }, t('site.name')),
      h('p', {}, t('site.tagline')),
      searchForm(),
      h('p', {}, allLink),
    ),
    h('h2', {}, t('home.figures')),
    figs,
    h('h2', {}, t('home.explore')),
    h(
      'div',
      { class: 'grid' },
      h('div', { class: 'card' }, h('h3', {}, h('a', { href: '/map' }, t('nav.map'))), h('p', {}, t('home.map.text'))),
      h('div', { class: 'card' }, h('h3', {}, h('a', { href: '/dashboards/city' }, t('nav.dashboard'))), h('p', {}, t('home.dash.text'))),
    ),
    h('h2', {}, t('home.featured')),
    featured,
    h('h2', {}, t('home.recent')),
    recent,
  );

  const catalogue = getJson<SearchResult>(apiUrl('/api/v1/datasets', { limit: 1000, facets: 'organization' }));
  const [figResult, listResult, recentResult] = await Promise.allSettled([
    catalogue.then((all) => Promise.all([figures(all), programmeFigures().catch(() => [])])).then(([a, b]) => [...a, ...b]),
    catalogue,
    getJson<SearchResult>(apiUrl('/api/v1/datasets', { limit: 6, sort: '-modified' })),
  ]);
  figs.removeAttribute('aria-busy');
  if (figResult.status === 'fulfilled') {
    replace(
      figs,
      h('dl', { class: 'figures' }, figResult.value.map((f) => h(
            'div',
            { class: 'figure' },
            h('dt', { lang: f.lang ?? null }, f.label),
            h('dd', { title: formatNumber(f.value) }, formatCompact(f.value)),
            f.note ? h('dd', { class: 'meta-line', lang: f.lang ?? null }, f.note) : null,
          ))),
    );
  } else {
    replace(figs, errorBox(figResult.reason));
  }
  if (listResult.status === 'fulfilled') {
    const bySlug = new Map(listResult.value.datasets.map((d) => [d.slug, d]));
    const chosen = FEATURED.map((s) => bySlug.get(s)).filter((d) => d !== undefined);
    replace(featured, chosen.map((d) => datasetCard(d)));
    allLink.textContent = t('home.all', listResult.value.count);
  } else {
    replace(featured, errorBox(listResult.reason));
  }
  if (recentResult.status === 'fulfilled') {
    replace(recent, recentResult.value.datasets.map((d) => h('li', {}, datasetCard(d))));
  } else {
    replace(recent, errorBox(recentResult.reason));
  }
}
