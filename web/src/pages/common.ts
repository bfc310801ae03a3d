// Pieces several pages share: the dataset search box and a dataset's summary card.

import type { Dataset } from '../api';
import { h, nextId } from '../dom';
import { formatDate, formatNumber, pick, pickLang, t } from '../i18n';

/** The search form: a GET to `/datasets?q=`, so it works before and without any script. */
export function searchForm(value = ''): HTMLFormElement {
  const id = nextId('q');
  return h(
    'form',
    { class: 'search-form', role: 'search', action: '/datasets', method: 'get' },
    h('label', { for: id, class: 'visually-hidden' }, t('search.label')),
    h('input', { id, type: 'search', name: 'q', value, placeholder: t('search.placeholder'), autocomplete: 'off' }),
    h('button', { type: 'submit' }, t('search.button')),
  );
}

/** The formats of a dataset's resources, once each. */
export function formats(d: Dataset): string[] {
  return [...new Set(d.resources.map((r) => r.format.toLowerCase()))];
}

/** A dataset as a card: title link, organisation, formats, last update. `level` is its heading level. */
export function datasetCard(d: Dataset, level: 'h2' | 'h3' = 'h3'): HTMLElement {
  const rows = d.resources.reduce((n, r) => n + (r.row_count ?? 0), 0);
  return h(
    'article',
    { class: 'card' },
    h(level, {}, h('a', { href: `/datasets/${encodeURIComponent(d.slug)}`, lang: pickLang(d.title) }, pick(d.title) || d.slug)),
    h('p', { lang: pickLang(d.organization.title) }, pick(d.organization.title)),
    h('div', {}, formats(d).map((f) => h('span', { class: 'badge format' }, f))),
    h('p', { class: 'meta-line' }, `${t('dataset.rows', formatNumber(rows))} · ${t('dataset.modified')}: ${formatDate(d.modified)}`),
  );
}
