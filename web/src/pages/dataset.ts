// `/datasets/{slug}`: a dataset's metadata in the chosen language, its resources and version history
// with downloads, a preview of the rows (sort, filter, page), a quick chart of a column, the API calls
// that give the same data, and the schema. The schema.org JSON-LD block is written by the server.

import { apiUrl, getJson, type Dataset, type Field, type Resource, type Rows } from '../api';
import { announce, h, nextId, replace } from '../dom';
import { formatBytes, formatDate, formatNumber, pick, pickLang, t } from '../i18n';
import { errorBox, setTitle } from '../layout';

const PREVIEW_SIZE = 20;
const NUMERIC = new Set(['integer', 'number']);
const SPATIAL = new Set(['geojson', 'geometry']);

export async function render(main: HTMLElement, [slug]: string[]): Promise<void> {
  const d = await getJson<Dataset>(`/api/v1/datasets/${encodeURIComponent(slug)}`);
  setTitle(pick(d.title) || d.slug);
  const spatial = d.resources.some((r) => r.schema?.fields.some((f) => SPATIAL.has(f.type)));
  const resourceTitle = (r: Resource) => pick(r.title) || r.name;

  replace(
    main,
    h('p', { class: 'meta-line' }, h('a', { href: '/datasets' }, t('nav.datasets'))),
    h('h1', { lang: pickLang(d.title) }, pick(d.title) || d.slug),
    h('p', { lang: pickLang(d.organization.title) }, h('a', { href: `/datasets?organization=${encodeURIComponent(d.organization.slug)}` }, pick(d.organization.title))),
    h('p', { lang: pickLang(d.description) }, pick(d.description)),
    spatial ? h('p', {}, h('a', { class: 'button', href: `/map?layers=${encodeURIComponent(d.slug)}` }, t('dataset.onmap'))) : null,
    about(d),
    h('h2', {}, t('dataset.resources')),
    d.resources.map((r) => resourceBlock(d, r, resourceTitle(r))),
    d.resources.length ? previewSection(d) : null,
    d.resources.length ? chartSection(d) : null,
    apiSection(d, spatial),
    h('h2', {}, t('dataset.schema')),
    d.resources.map((r) => schemaTable(r, resourceTitle(r), d.resources.length > 1)),
  );
}

function about(d: Dataset): HTMLElement {
  const row = (k: string, v: Node | string | null) => (v ? [h('dt', {}, t(k)), h('dd', {}, v)] : []);
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': 'about-h' },
    h('h2', { id: 'about-h', style: 'margin-top:0' }, t('dataset.meta')),
    h(
      'dl',
      { class: 'kv' },
      row('dataset.organization', h('span', { lang: pickLang(d.organization.title) }, pick(d.organization.title))),
      row('dataset.license', d.license),
      row('dataset.frequency', d.frequency),
      row('dataset.theme', d.theme),
      row('dataset.tags', d.tags.length ? h('span', {}, d.tags.map((tag) => h('a', { class: 'badge', href: `/datasets?tag=${encodeURIComponent(tag)}` }, tag))) : null),
      row('dataset.source', d.source),
      row('dataset.created', formatDate(d.created, true)),
      row('dataset.modified', formatDate(d.modified, true)),
    ),
  );
}

function resourceBlock(d: Dataset, r: Resource, title: string): HTMLElement {
  const versions = [...(r.versions ?? [])].sort((a, b) => b.number - a.number);
  const current = versions.find((v) => v.number === r.current_version);
  const base = `/api/v1/datasets/${encodeURIComponent(d.slug)}/resources/${encodeURIComponent(r.name)}`;
  return h(
    'section',
    { class: 'panel', style: 'margin-bottom:1rem', 'aria-label': title },
    h(
      'div',
      { class: 'section-head' },
      h('h3', { lang: pickLang(r.title), style: 'margin:0' }, title, ' ', h('span', { class: 'badge format' }, r.format)),
      r.download_url ? h('a', { class: 'button', href: r.download_url, download: current?.filename ?? '' }, t('dataset.download'), current ? ` (${formatBytes(current.bytes)})` : '') : null,
    ),
    h('p', { class: 'meta-line' }, t('dataset.rows', r.row_count), current ? ` · ${current.filename ?? ''}` : ''),
    versions.length
      ? h(
          'details',
          {},
          h('summary', {}, `${t('dataset.versions')} (${formatNumber(versions.length)})`),
          h(
            'div',
            { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `${t('dataset.versions')}: ${title}` },
            h(
              'table',
              {},
              h('thead', {}, h('tr', {}, ['dataset.version', 'dataset.published', 'dataset.rowcount', 'dataset.size', 'dataset.checksum', 'dataset.download'].map((k) => h('th', { scope: 'col' }, t(k))))),
              h(
                'tbody',
                {},
                versions.map((v) =>
                  h(
                    'tr',
                    {},
                    h('td', { class: 'num' }, String(v.number)),
                    h('td', {}, v.created ? formatDate(v.created, true) : ''),
                    h('td', { class: 'num' }, v.row_count === undefined ? '' : formatNumber(v.row_count)),
                    h('td', { class: 'num' }, formatBytes(v.bytes)),
                    h('td', {}, h('code', { title: v.sha256 }, v.sha256.slice(0, 12))),
                    h('td', {}, h('a', { href: v.download_url ?? `${base}/versions/${v.number}/download`, 'aria-label': `${v.filename ?? t('dataset.download')} (${t('dataset.version')} ${v.number})` }, v.filename ?? t('dataset.download'))),
                  ),
                ),
              ),
            ),
          ),
        )
      : null,
  );
}

/** A cell's text: geometries as their type and first position, objects as JSON, the rest as is. */
function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') {
    const g = v as { type?: string; coordinates?: unknown };
    if (g.type && g.coordinates !== undefined) {
      const first = JSON.stringify(g.coordinates).match(/-?\d+(\.\d+)?,-?\d+(\.\d+)?/);
      return first ? `${g.type} (${first[0].replace(',', ', ')})` : g.type;
    }
    return JSON.stringify(v);
  }
  if (typeof v === 'number') return formatNumber(v, 7);
  return String(v);
}

/** A form control under its label. */
function field(id: string, label: string, control: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

interface Preview {
  resource: Resource;
  sort: string;
  offset: number;
  column: string;
  op: string;
  value: string;
}

function previewSection(d: Dataset): HTMLElement {
  const box = h('div', {});
  const status = h('p', { role: 'status', class: 'meta-line' });
  const state: Preview = { resource: d.resources[0], sort: '', offset: 0, column: '', op: 'contains', value: '' };
  const resSelectId = nextId('res');
  const colId = nextId('col');
  const opId = nextId('op');
  const valId = nextId('val');

  const columnSelect = h('select', { id: colId });
  const fillColumns = () => {
    replace(
      columnSelect,
      h('option', { value: '' }, t('dataset.filter.any')),
      (state.resource.schema?.fields ?? []).filter((f) => !SPATIAL.has(f.type)).map((f) => h('option', { value: f.name }, f.name)),
    );
  };
  fillColumns();
  const opSelect = h('select', { id: opId }, ['contains', 'eq', 'gt', 'lt'].map((o) => h('option', { value: o }, t(`op.${o}`))));
  const valueInput = h('input', { id: valId, type: 'text' });

  const load = async () => {
    const params: Record<string, string | number> = { _limit: PREVIEW_SIZE, _offset: state.offset };
    if (state.sort) params._sort = state.sort;
    if (state.value) {
      if (!state.column) params._q = state.value;
      else params[state.op === 'eq' ? state.column : `${state.column}__${state.op}`] = state.value;
    }
    box.setAttribute('aria-busy', 'true');
    try {
      const rows = await getJson<Rows>(apiUrl(state.resource.rows_url, params));
      drawTable(rows);
    } catch (err) {
      replace(box, errorBox(err));
    } finally {
      box.removeAttribute('aria-busy');
    }
  };

  const drawTable = (rows: Rows) => {
    const fields = rows.fields.filter((f) => f.name !== '_id' && !SPATIAL.has(f.type));
    const total = rows.total ?? rows.records.length;
    const from = rows.records.length ? state.offset + 1 : 0;
    const to = state.offset + rows.records.length;
    status.textContent = rows.records.length ? t('dataset.rowsShown', from, to, total) : t('dataset.rowsNone');
    announce(status.textContent);
    const sortOf = (name: string) => (state.sort === name ? 'ascending' : state.sort === `-${name}` ? 'descending' : 'none');
    replace(
      box,
      h(
        'div',
        { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': t('dataset.preview') },
        h(
          'table',
          { class: 'preview' },
          h('caption', { class: 'visually-hidden' }, `${t('dataset.preview')}: ${status.textContent}`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              fields.map((f) =>
                h(
                  'th',
                  { scope: 'col', 'aria-sort': sortOf(f.name), class: NUMERIC.has(f.type) ? 'num' : null },
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'sort',
                      'data-column': f.name,
                      'aria-label': t('dataset.sortBy', f.name),
                      onclick: () => {
                        state.sort = state.sort === f.name ? `-${f.name}` : f.name;
                        state.offset = 0;
                        void load().then(() => (box.querySelector(`button[data-column="${CSS.escape(f.name)}"]`) as HTMLElement | null)?.focus());
                      },
                    },
                    f.name,
                    h('span', { 'aria-hidden': 'true' }, sortOf(f.name) === 'ascending' ? '▲' : sortOf(f.name) === 'descending' ? '▼' : '↕'),
                  ),
                ),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            rows.records.map((rec) =>
              h(
                'tr',
                {},
                fields.map((f) => {
                  const text = cellText(rec[f.name]);
                  return h('td', { class: NUMERIC.has(f.type) ? 'num' : null, title: text.length > 40 ? text : null }, text);
                }),
              ),
            ),
          ),
        ),
      ),
      h(
        'nav',
        { class: 'pager', 'aria-label': `${t('dataset.preview')} – ${t('paging.label')}` },
        h('button', { type: 'button', class: 'secondary', disabled: state.offset === 0, onclick: () => ((state.offset = Math.max(0, state.offset - PREVIEW_SIZE)), void load()) }, t('paging.prev')),
        h('button', { type: 'button', class: 'secondary', disabled: to >= total, onclick: () => ((state.offset += PREVIEW_SIZE), void load()) }, t('paging.next')),
      ),
    );
  };

  const form = h(
    'form',
    {
      class: 'filter-form',
      'aria-label': t('dataset.filter'),
      onsubmit: (e: Event) => {
        e.preventDefault();
        state.column = columnSelect.value;
        state.op = opSelect.value;
        state.value = valueInput.value.trim();
        state.offset = 0;
        void load();
      },
    },
    d.resources.length > 1
      ? h(
          'div',
          { class: 'field' },
          h('label', { for: resSelectId }, t('dataset.resource')),
          h(
            'select',
            {
              id: resSelectId,
              onchange: (e: Event) => {
                const name = (e.target as HTMLSelectElement).value;
                state.resource = d.resources.find((r) => r.name === name) ?? d.resources[0];
                Object.assign(state, { sort: '', offset: 0, value: '', column: '' });
                valueInput.value = '';
                fillColumns();
                void load();
              },
            },
            d.resources.map((r) => h('option', { value: r.name }, pick(r.title) || r.name)),
          ),
        )
      : null,
    field(colId, t('dataset.filter.column'), columnSelect),
    field(opId, t('dataset.filter.op'), opSelect),
    field(valId, t('dataset.filter.value'), valueInput),
    h('button', { type: 'submit' }, t('dataset.filter.apply')),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: () => {
          valueInput.value = '';
          Object.assign(state, { sort: '', offset: 0, value: '', column: '' });
          columnSelect.value = '';
          void load();
        },
      },
      t('dataset.filter.reset'),
    ),
  );
  void load();
  return h('section', { 'aria-labelledby': 'preview-h', id: 'preview' }, h('h2', { id: 'preview-h' }, t('dataset.preview')), form, status, box);
}

/** The quick chart: a numeric column against a label column, drawn with uPlot (loaded on demand),
 *  with a text summary for those who cannot see it. */
function chartSection(d: Dataset): HTMLElement | null {
  const candidates = d.resources.filter((r) => (r.schema?.fields ?? []).some((f) => NUMERIC.has(f.type)));
  const section = h('section', { 'aria-labelledby': 'chart-h', id: 'chart' }, h('h2', { id: 'chart-h' }, t('dataset.chart')));
  if (!candidates.length) {
    section.append(h('p', {}, t('dataset.chart.none')));
    return section;
  }
  const resource = candidates[0];
  const fields = resource.schema?.fields ?? [];
  const numeric = fields.filter((f) => NUMERIC.has(f.type));
  const labels = fields.filter((f) => !NUMERIC.has(f.type) && !SPATIAL.has(f.type));
  const valueId = nextId('chart-value');
  const labelId = nextId('chart-label');
  const preferred = numeric.find((f) => f.name === 'value') ?? numeric[0];
  const valueSelect = h('select', { id: valueId }, numeric.map((f) => h('option', { value: f.name, selected: f === preferred }, f.name)));
  const labelSelect = h('select', { id: labelId }, h('option', { value: '' }, '#'), labels.map((f, i) => h('option', { value: f.name, selected: i === labels.findIndex((x) => x.type === 'date' || x.type === 'datetime') || (i === 0 && !labels.some((x) => x.type === 'date' || x.type === 'datetime')) }, f.name)));
  const plot = h('div', { class: 'chart-box panel', role: 'img', 'aria-label': t('dataset.chart') });
  const summary = h('p', { class: 'meta-line', id: nextId('chart-summary') });
  plot.setAttribute('aria-describedby', summary.id);
  const draw = async () => {
    const value = valueSelect.value;
    const label = labelSelect.value;
    plot.setAttribute('aria-busy', 'true');
    try {
      const rows = await getJson<Rows>(apiUrl(resource.rows_url, { _limit: 500, _fields: [value, label].filter(Boolean).join(','), [`${value}__notnull`]: '' }));
      const ys = rows.records.map((r) => Number(r[value]));
      const xs = rows.records.map((r, i) => (label ? cellText(r[label]) : String(i + 1)));
      plot.setAttribute('aria-label', `${t('dataset.chart')}: ${value}${label ? ` / ${label}` : ''}`);
      if (!ys.length) {
        summary.textContent = t('dataset.rowsNone');
        replace(plot);
        return;
      }
      const min = Math.min(...ys);
      const max = Math.max(...ys);
      const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
      summary.textContent = t('dataset.chart.summary', value, ys.length, formatNumber(min, 2), formatNumber(max, 2), formatNumber(mean, 2));
      const { barChart } = await import('../chart');
      barChart(plot, xs, ys, value);
    } catch (err) {
      replace(plot, errorBox(err));
    } finally {
      plot.removeAttribute('aria-busy');
    }
  };
  valueSelect.addEventListener('change', () => void draw());
  labelSelect.addEventListener('change', () => void draw());
  // Drawn when scrolled near, so the page opens without the chart library.
  const seen = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) {
      seen.disconnect();
      void draw();
    }
  }, { rootMargin: '200px' });
  seen.observe(plot);
  section.append(
    h('div', { class: 'filter-form' }, field(valueId, t('dataset.chart.column'), valueSelect), field(labelId, t('dataset.chart.label'), labelSelect)),
    plot,
    summary,
  );
  return section;
}

function apiSection(d: Dataset, spatial: boolean): HTMLElement {
  const origin = location.origin;
  const r = d.resources[0];
  const calls: [string, string][] = [[`citydata (native)`, `${origin}/api/v1/datasets/${d.slug}`]];
  if (r) {
    calls.push([`citydata rows (JSON)`, `${origin}${r.rows_url}?_limit=100`]);
    calls.push([`citydata rows (CSV)`, `${origin}${r.rows_url}?_format=csv&_limit=10000`]);
    calls.push([`CKAN datastore_search`, `${origin}/api/3/action/datastore_search?resource_id=${r.id}&limit=100`]);
  }
  calls.push([`CKAN package_show`, `${origin}/api/3/action/package_show?id=${d.slug}`]);
  calls.push([`DCAT (JSON-LD)`, `${origin}/dataset/${d.slug}`]);
  if (spatial) {
    calls.push([`OGC API Features`, `${origin}/ogc/collections/${d.slug}/items?limit=100`]);
    calls.push([`Vector tiles (TileJSON)`, `${origin}/tiles/${d.slug}.json`]);
  }
  return h(
    'section',
    { 'aria-labelledby': 'api-h', id: 'api' },
    h('h2', { id: 'api-h' }, t('dataset.api')),
    h(
      'div',
      { class: 'api-list' },
      calls.map(([name, url]) => {
        const copy = h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('dataset.copy')}: ${name}` }, t('dataset.copy'));
        copy.addEventListener('click', () => {
          void navigator.clipboard?.writeText(`curl '${url}'`).then(() => {
            copy.textContent = t('dataset.copied');
            announce(t('dataset.copied'));
          });
        });
        return h('div', { class: 'api-item' }, h('h3', { style: 'margin:0;font-size:1rem' }, name), h('div', { class: 'row' }, h('pre', { class: 'code' }, h('code', {}, `curl '${url}'`)), copy));
      }),
    ),
  );
}

function schemaTable(r: Resource, title: string, named: boolean): HTMLElement | null {
  const fields: Field[] = r.schema?.fields ?? [];
  if (!fields.length) return null;
  return h(
    'div',
    {},
    named ? h('h3', {}, title) : null,
    h(
      'div',
      { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': `${t('dataset.schema')}: ${title}` },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('dataset.field')), h('th', { scope: 'col' }, t('dataset.type')), h('th', { scope: 'col' }, t('dataset.description')))),
        h('tbody', {}, fields.map((f) => h('tr', {}, h('td', {}, h('code', {}, f.name)), h('td', {}, f.type), h('td', {}, f.description ?? '')))),
      ),
    ),
  );
}
