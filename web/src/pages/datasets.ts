// `/datasets`: search with facets, sorting and paging. The whole state lives in the URL
// (`q`, `sort`, `page`, and one repeated key per facet), so a search can be shared and bookmarked, and
// the browser's back button steps through it.

import { apiUrl, getJson, type SearchResult, type Text } from '../api';
import { announce, h, replace } from '../dom';
import { formatDate, formatNumber, pick, pickLang, t } from '../i18n';
import { errorBox, setTitle } from '../layout';
import { formats, searchForm } from './common';

const FACETS = ['organization', 'tag', 'format', 'theme', 'license'] as const;
const PAGE_SIZE = 10;
const SORTS: [string, string][] = [
  ['relevance', 'sort.relevance'],
  ['-modified', 'sort.modified'],
  ['title', 'sort.title'],
];

interface State {
  q: string;
  sort: string;
  page: number;
  filters: [string, string][];
}

function readState(): State {
  const p = new URLSearchParams(location.search);
  const filters: [string, string][] = [];
  for (const f of FACETS) for (const v of p.getAll(f)) filters.push([f, v]);
  const page = Math.max(1, Number.parseInt(p.get('page') ?? '1', 10) || 1);
  return { q: p.get('q') ?? '', sort: p.get('sort') ?? (p.get('q') ? 'relevance' : 'title'), page, filters };
}

function stateUrl(s: State): string {
  const p = new URLSearchParams();
  if (s.q) p.set('q', s.q);
  for (const [k, v] of s.filters) p.append(k, v);
  if (s.sort && s.sort !== (s.q ? 'relevance' : 'title')) p.set('sort', s.sort);
  if (s.page > 1) p.set('page', String(s.page));
  const lang = new URLSearchParams(location.search).get('lang');
  if (lang) p.set('lang', lang);
  const q = p.toString();
  return q ? `/datasets?${q}` : '/datasets';
}

export async function render(main: HTMLElement): Promise<void> {
  const results = h('div', { id: 'results' });
  const facets = h('div', { class: 'facets' });
  const heading = h('h1', {}, t('datasets.title'));
  replace(
    main,
    heading,
    searchForm(readState().q),
    h(
      'div',
      { class: 'search-layout' },
      h('aside', { 'aria-label': t('datasets.filters') }, h('h2', { class: 'visually-hidden' }, t('datasets.filters')), facets),
      h('section', { 'aria-labelledby': 'results-count' }, results),
    ),
  );
  const go = (s: State, push = true) => {
    if (push) history.pushState(null, '', stateUrl(s));
    void draw(s, results, facets, go);
  };
  window.addEventListener('popstate', () => void draw(readState(), results, facets, go));
  await draw(readState(), results, facets, go);
}

function facetLabel(field: string, value: string, title?: Text): { text: string; lang: string | null } {
  if (title) return { text: pick(title), lang: pickLang(title) };
  if (field === 'format') return { text: value.toUpperCase(), lang: null };
  return { text: value, lang: null };
}

async function draw(s: State, results: HTMLElement, facetBox: HTMLElement, go: (s: State, push?: boolean) => void): Promise<void> {
  setTitle(s.q ? `${s.q} · ${t('datasets.title')}` : t('datasets.title'));
  results.setAttribute('aria-busy', 'true');
  let found: SearchResult;
  try {
    const params: Record<string, string | number | string[]> = {
      q: s.q,
      limit: PAGE_SIZE,
      offset: (s.page - 1) * PAGE_SIZE,
      sort: s.sort,
      facets: FACETS.join(','),
    };
    for (const f of FACETS) {
      const vs = s.filters.filter(([k]) => k === f).map(([, v]) => v);
      if (vs.length) params[f] = vs;
    }
    found = await getJson<SearchResult>(apiUrl('/api/v1/datasets', params));
  } catch (err) {
    replace(results, errorBox(err));
    results.removeAttribute('aria-busy');
    return;
  }
  results.removeAttribute('aria-busy');

  // Facets: a group of checkboxes per field; ticking one filters at once. On a phone the groups
  // start closed, so that the results come first.
  const wide = window.matchMedia('(min-width: 800px)').matches;
  replace(
    facetBox,
    FACETS.map((field) => {
      const values = found.facets[field] ?? [];
      const active = s.filters.filter(([k]) => k === field).map(([, v]) => v);
      const shown = [...values];
      for (const v of active) if (!shown.some((x) => x.value === v)) shown.push({ value: v, count: 0 });
      if (shown.length === 0) return null;
      return h(
        'details',
        { open: active.length > 0 || (wide && (field === 'organization' || field === 'format')) },
        h('summary', {}, t(`facet.${field}`)),
        h(
          'fieldset',
          {},
          h('legend', {}, t(`facet.${field}`)),
          shown.map((fv) => {
            const label = facetLabel(field, fv.value, fv.title);
            const checked = active.includes(fv.value);
            return h(
              'label',
              {},
              h('input', {
                type: 'checkbox',
                name: field,
                value: fv.value,
                checked,
                onchange: () => {
                  const filters = checked
                    ? s.filters.filter(([k, v]) => !(k === field && v === fv.value))
                    : [...s.filters, [field, fv.value] as [string, string]];
                  go({ ...s, filters, page: 1 });
                },
              }),
              h('span', { lang: label.lang }, label.text),
              h('span', { class: 'count' }, formatNumber(fv.count)),
            );
          }),
        ),
      );
    }),
    s.filters.length
      ? h('button', { type: 'button', class: 'secondary', onclick: () => go({ ...s, filters: [], page: 1 }) }, t('datasets.clear'))
      : null,
  );

  const pages = Math.max(1, Math.ceil(found.count / PAGE_SIZE));
  const sortId = 'sort-select';
  replace(
    results,
    h(
      'div',
      { class: 'results-bar' },
      h('p', { id: 'results-count', role: 'status' }, t('datasets.count', found.count)),
      h(
        'div',
        {},
        h('label', { for: sortId }, `${t('datasets.sort')} `),
        h(
          'select',
          { id: sortId, onchange: (e: Event) => go({ ...s, sort: (e.target as HTMLSelectElement).value, page: 1 }) },
          SORTS.map(([v, k]) => h('option', { value: v, selected: v === s.sort }, t(k))),
        ),
      ),
    ),
    found.datasets.length === 0
      ? h('p', {}, t('datasets.none'))
      : h(
          'ol',
          { class: 'plain', start: (s.page - 1) * PAGE_SIZE + 1 },
          found.datasets.map((d) =>
            h(
              'li',
              { class: 'result' },
              h('h2', {}, h('a', { href: `/datasets/${encodeURIComponent(d.slug)}`, lang: pickLang(d.title) }, pick(d.title) || d.slug)),
              h('p', { lang: pickLang(d.organization.title) }, pick(d.organization.title)),
              h('p', { lang: pickLang(d.description) }, excerpt(pick(d.description))),
              h(
                'div',
                {},
                formats(d).map((f) => h('span', { class: 'badge format' }, f)),
                d.tags.slice(0, 5).map((tag) => h('span', { class: 'badge' }, tag)),
              ),
              h('p', { class: 'meta-line' }, `${t('dataset.modified')}: ${formatDate(d.modified)}`),
            ),
          ),
        ),
    pager(s, pages, go),
  );
  announce(t('datasets.count', found.count));
}

function excerpt(text: string, max = 220): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max).join('').trimEnd()}…`;
}

/** Links to the neighbouring pages (real links: they can be opened in a new tab). */
function pager(s: State, pages: number, go: (s: State) => void): HTMLElement | null {
  if (pages <= 1) return null;
  const link = (page: number, text: string, label?: string) =>
    h(
      'a',
      {
        href: stateUrl({ ...s, page }),
        'aria-label': label ?? null,
        onclick: (e: Event) => {
          const me = e as MouseEvent;
          if (me.ctrlKey || me.metaKey || me.shiftKey) return;
          e.preventDefault();
          go({ ...s, page });
          document.getElementById('results-count')?.scrollIntoView();
        },
      },
      text,
    );
  const numbers: number[] = [];
  for (let p = 1; p <= pages; p++) if (p === 1 || p === pages || Math.abs(p - s.page) <= 2) numbers.push(p);
  return h(
    'nav',
    { class: 'pager', 'aria-label': t('paging.label') },
    s.page > 1 ? link(s.page - 1, t('paging.prev')) : null,
    h(
      'ul',
      {},
      numbers.map((p) =>
        h('li', {}, p === s.page ? h('span', { class: 'current', 'aria-current': 'page' }, formatNumber(p)) : link(p, formatNumber(p), t('paging.page', p))),
      ),
    ),
    s.page < pages ? link(s.page + 1, t('paging.next')) : null,
    h('span', { class: 'meta-line' }, t('paging.of', s.page, pages)),
  );
}
