// `/dashboards/{id}`: a dashboard drawn from its definition (`/api/v1/dashboards/{id}`).
//
// Live panels find their Datastreams through the SensorThings API, show the latest readings of each
// group (cards: number, unit, time) and a rolling chart of the recent minutes, and update by
// themselves from one Server-Sent Events stream for the whole page. Panels of datasets show rows of
// a published table as figures, a bar chart or one headline number. Every chart has a table of its
// numbers as its text alternative; new readings are announced to screen readers at most once a
// minute per panel, and can be paused.

import '../dashboard.css';
import { ApiError, apiUrl, getJson, type Dataset, type Rows, type Text } from '../api';
import { timeChart } from '../chart';
import { h, nextId, replace } from '../dom';
import { addStrings, formatNumber, lang, pick, pickLang, t } from '../i18n';
import { errorBox, setTitle } from '../layout';
import { choose, discover, history, LiveFeed, MAX_FOLLOWED, type LiveState, type Reading, type Stream } from '../live';

addStrings({
  'dash.live': ['Live', '即時', '实时'],
  'dash.connecting': ['Connecting…', '連線中…', '连线中…'],
  'dash.reconnecting': ['Reconnecting…', '重新連線中…', '重新连线中…'],
  'dash.closed': ['Not updating', '未有更新', '未有更新'],
  'dash.paused': ['Paused', '已暫停', '已暂停'],
  'dash.pause': ['Pause live updates', '暫停即時更新', '暂停实时更新'],
  'dash.resume': ['Resume live updates', '恢復即時更新', '恢复实时更新'],
  'dash.status': ['Live readings: {0}', '即時讀數：{0}', '实时读数：{0}'],
  'dash.notfound': ['Dashboard not found', '找不到儀表板', '找不到仪表板'],
  'dash.notfound.text': ['There is no dashboard “{0}”.', '沒有名為「{0}」的儀表板。', '没有名为「{0}」的仪表板。'],
  'dash.city': ['Open the city dashboard', '前往城市儀表板', '前往城市仪表板'],
  'dash.others': ['Dashboards', '儀表板', '仪表板'],
  'dash.nodata': ['No reading yet', '尚無讀數', '尚无读数'],
  'dash.nostreams': ['No sensor measures this yet.', '暫時沒有感應器量度此項目。', '暂时没有传感器量度此项目。'],
  'dash.at': ['at {0}', '於 {0}', '于 {0}'],
  'dash.sensors': ['{0} sensors', '{0} 個感應器', '{0} 个传感器'],
  'dash.sensor': ['1 sensor', '1 個感應器', '1 个传感器'],
  'dash.table': ['Show the numbers as a table', '以表格顯示數字', '以表格显示数字'],
  'dash.chart.live': [
    '{0} ({1}), mean per minute by {2}, last {3} minutes',
    '{0}（{1}），按{2}劃分的每分鐘平均值，最近 {3} 分鐘',
    '{0}（{1}），按{2}划分的每分钟平均值，最近 {3} 分钟',
  ],
  'dash.chart.summary': ['Latest: {0}.', '最新：{0}。', '最新：{0}。'],
  'dash.time': ['Time', '時間', '时间'],
  'dash.group.area': ['area', '地區', '地区'],
  'dash.group': ['group', '組別', '组别'],
  'dash.other': ['Other', '其他', '其他'],
  'dash.item': ['Item', '項目', '项目'],
  'dash.value': ['Value', '數值', '数值'],
  'dash.unit': ['Unit', '單位', '单位'],
  'dash.source': ['Source: {0}', '來源：{0}', '来源：{0}'],
  'dash.norows': ['No figure matches.', '沒有相符的數字。', '没有相符的数字。'],
  'dash.announce': ['{0}: {1}', '{0}：{1}', '{0}：{1}'],
});

/** How often a live panel may speak to screen readers. */
const ANNOUNCE_EVERY_MS = 60_000;
/** How often charts and tables are redrawn (cards update at once). */
const REDRAW_EVERY_MS = 3000;
/** Group colours (each at least 4.5:1 against white). */
const COLOURS = ['#0b5d7a', '#b3261e', '#5b3f8c', '#2e6b30', '#8a5300', '#1b2430', '#ad1457', '#00695c'];

interface PanelBase {
  id: string;
  kind: 'live' | 'figures' | 'chart' | 'stat';
  title: Text;
  description: Text;
}

interface LivePanelDef extends PanelBase {
  kind: 'live';
  network: string | null;
  observed_properties: string[];
  group_by: string;
  per_group: number;
  window_minutes: number;
  names?: Record<string, Text>;
}

interface RowsPanelDef extends PanelBase {
  kind: 'figures' | 'chart' | 'stat';
  dataset: string;
  resource: string;
  value: string;
  label: string[];
  unit: string | null;
  filter: Record<string, string>;
  limit: number;
}

type PanelDef = LivePanelDef | RowsPanelDef;

interface DashboardDef {
  id: string;
  title: Text;
  description: Text;
  panels: PanelDef[];
}

interface Summary {
  id: string;
  title: Text;
  url: string;
}

/** A time in Hong Kong, hours to seconds. */
function clock(ms: number, seconds = true): string {
  return new Intl.DateTimeFormat(lang(), {
    hour: '2-digit',
    minute: '2-digit',
    second: seconds ? '2-digit' : undefined,
    hour12: false,
    timeZone: 'Asia/Hong_Kong',
  }).format(new Date(ms));
}

/** A reading written with as many decimals as it needs. */
function num(v: number): string {
  return formatNumber(v, Math.abs(v) >= 100 || Number.isInteger(v) ? 0 : 1);
}

function groupWord(groupBy: string): string {
  return groupBy === 'area' ? t('dash.group.area') : t('dash.group');
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** One live panel: its streams, their readings, and the elements that show them. */
class LivePanel {
  readonly streams = new Map<number, Stream>();
  private readonly readings = new Map<number, Reading[]>();
  private readonly groups: string[];
  private readonly properties: string[];
  private readonly cards = new Map<string, { value: HTMLElement; time: HTMLElement; count: HTMLElement }>();
  private readonly charts = new Map<string, { box: HTMLElement; plot: ReturnType<typeof timeChart> | null; body: HTMLElement; summary: HTMLElement }>();
  private readonly region: HTMLElement;
  private dirty = false;
  /** The first announcement comes a minute after the page opens, not with it. */
  private lastSpoken = Date.now();
  paused = false;

  get windowMinutes(): number {
    return this.def.window_minutes;
  }

  constructor(
    private readonly def: LivePanelDef,
    streams: Stream[],
    private readonly el: HTMLElement,
  ) {
    for (const s of streams) this.streams.set(s.id, s);
    this.groups = [...new Set(streams.map((s) => s.group))].sort();
    this.properties = def.observed_properties;
    this.region = h('div', { class: 'visually-hidden', 'aria-live': 'polite', 'aria-atomic': 'true' });
    this.build();
  }

  /** A property or group name in the page's language, when the definition gives one. */
  private name(raw: string): string {
    if (!raw) return t('dash.other');
    return pick(this.def.names?.[raw]) || raw;
  }

  /** The `lang` of a name (the data's own names are English). */
  private nameLang(raw: string): string {
    const n = this.def.names?.[raw];
    return n ? pickLang(n) : 'en';
  }

  private key(property: string, group: string): string {
    return `${property}\u0000${group}`;
  }

  private unitOf(property: string): string {
    for (const s of this.streams.values()) if (s.property === property && s.unit) return s.unit;
    return '';
  }

  private build(): void {
    const blocks = this.properties.map((p) => {
      const unit = this.unitOf(p);
      const streams = [...this.streams.values()].filter((s) => s.property === p);
      const headingId = nextId('prop');
      if (!streams.length) {
        return h('div', { class: 'live-prop' }, h('h3', { id: headingId, lang: this.nameLang(p) }, this.name(p)), h('p', { class: 'meta-line' }, t('dash.nostreams')));
      }
      const groups = this.groups.filter((g) => streams.some((s) => s.group === g));
      const cards = groups.map((g, i) => {
        const value = h('span', { class: 'live-value' }, '–');
        const time = h('span', { class: 'live-time' }, t('dash.nodata'));
        const n = streams.filter((s) => s.group === g).length;
        const count = h('span', { class: 'live-count' }, n === 1 ? t('dash.sensor') : t('dash.sensors', n));
        this.cards.set(this.key(p, g), { value, time, count });
        return h(
          'li',
          { class: 'live-card', style: `--group-colour:${COLOURS[this.groups.indexOf(g) % COLOURS.length] ?? COLOURS[i]}` },
          h('span', { class: 'live-group', lang: this.nameLang(g) }, this.name(g)),
          h('span', { class: 'live-reading' }, value, ' ', h('span', { class: 'live-unit' }, unit)),
          time,
          count,
        );
      });
      const caption = t('dash.chart.live', this.name(p), unit, groupWord(this.def.group_by), this.def.window_minutes);
      const summary = h('p', { class: 'visually-hidden' });
      const box = h('div', { class: 'chart-box live-chart', role: 'img', 'aria-label': caption });
      const body = h('tbody');
      const table = h(
        'details',
        { class: 'chart-table' },
        h('summary', {}, t('dash.table')),
        h(
          'div',
          { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': caption },
          h(
            'table',
            {},
            h('caption', { class: 'visually-hidden' }, caption),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('dash.time')), groups.map((g) => h('th', { scope: 'col', class: 'num', lang: this.nameLang(g) }, this.name(g))))),
            body,
          ),
        ),
      );
      this.charts.set(p, { box, plot: null, body, summary });
      return h(
        'div',
        { class: 'live-prop', 'aria-labelledby': headingId, role: 'group' },
        h('h3', { id: headingId }, h('span', { lang: this.nameLang(p) }, this.name(p)), unit ? h('span', { class: 'live-unit-head' }, ` · ${unit}`) : null),
        h('ul', { class: 'live-cards' }, cards),
        box,
        summary,
        table,
      );
    });
    this.el.append(h('div', { class: 'live-props' }, blocks), this.region);
  }

  /** Seeds the readings from the history. */
  seed(past: Map<number, Reading[]>): void {
    for (const [id, rs] of past) this.readings.set(id, rs);
    this.redraw();
  }

  /** Takes a new reading of one of its streams. */
  add(id: number, r: Reading): void {
    const s = this.streams.get(id);
    if (!s) return;
    const list = this.readings.get(id) ?? [];
    // Readings may arrive late: keep them in time order.
    let i = list.length;
    while (i > 0 && list[i - 1].t > r.t) i -= 1;
    if (list[i - 1]?.t !== r.t) list.splice(i, 0, r);
    const oldest = Date.now() - this.def.window_minutes * 60_000;
    while (list.length && list[0].t < oldest) list.shift();
    this.readings.set(id, list);
    this.dirty = true;
    if (!this.paused) this.updateCard(s.property, s.group);
  }

  /** The latest reading of each stream of a property and group (those within the window). */
  private latest(property: string, group: string): Reading[] {
    const out: Reading[] = [];
    for (const s of this.streams.values()) {
      if (s.property !== property || s.group !== group) continue;
      const list = this.readings.get(s.id);
      const last = list?.[list.length - 1];
      if (last) out.push(last);
    }
    return out;
  }

  private updateCard(property: string, group: string): void {
    const card = this.cards.get(this.key(property, group));
    if (!card) return;
    const latest = this.latest(property, group);
    if (!latest.length) return;
    const v = mean(latest.map((r) => r.v));
    const newest = Math.max(...latest.map((r) => r.t));
    card.value.textContent = num(v);
    card.value.dataset.value = String(v);
    replace(card.time, t('dash.at', clock(newest)));
    card.time.setAttribute('data-time', new Date(newest).toISOString());
  }

  /** Redraws charts and tables when readings came in, and speaks at most once a minute. */
  tick(now: number): void {
    if (this.paused) return;
    if (this.dirty) {
      this.dirty = false;
      this.redraw();
    }
    if (now - this.lastSpoken >= ANNOUNCE_EVERY_MS) {
      const text = this.spoken();
      if (text) {
        this.lastSpoken = now;
        this.region.textContent = text;
      }
    }
  }

  private spoken(): string {
    const parts: string[] = [];
    for (const p of this.properties) {
      const unit = this.unitOf(p);
      const each = this.groups
        .map((g) => {
          const latest = this.latest(p, g);
          return latest.length ? `${this.name(g)} ${num(mean(latest.map((r) => r.v)))} ${unit}` : '';
        })
        .filter(Boolean);
      if (each.length) parts.push(`${this.name(p)}: ${each.join(', ')}`);
    }
    return parts.length ? t('dash.announce', pick(this.def.title), parts.join('; ')) : '';
  }

  /** The mean per minute of each group over the window: minute starts (s) and one series per group. */
  private perMinute(property: string, groups: string[]): { times: number[]; values: (number | null)[][] } {
    const minutes = this.def.window_minutes;
    const end = Math.floor(Date.now() / 60_000);
    const start = end - minutes + 1;
    const sums = groups.map(() => new Array<number>(minutes).fill(0));
    const counts = groups.map(() => new Array<number>(minutes).fill(0));
    for (const s of this.streams.values()) {
      if (s.property !== property) continue;
      const gi = groups.indexOf(s.group);
      if (gi < 0) continue;
      for (const r of this.readings.get(s.id) ?? []) {
        const m = Math.floor(r.t / 60_000) - start;
        if (m < 0 || m >= minutes) continue;
        sums[gi][m] += r.v;
        counts[gi][m] += 1;
      }
    }
    const times = Array.from({ length: minutes }, (_, i) => (start + i) * 60);
    const values = sums.map((row, gi) => row.map((sum, i) => (counts[gi][i] ? sum / counts[gi][i] : null)));
    return { times, values };
  }

  redraw(): void {
    for (const s of this.streams.values()) this.updateCard(s.property, s.group);
    for (const p of this.properties) {
      const chart = this.charts.get(p);
      if (!chart) continue;
      const groups = this.groups.filter((g) => [...this.streams.values()].some((s) => s.property === p && s.group === g));
      const { times, values } = this.perMinute(p, groups);
      if (!chart.plot) {
        chart.plot = timeChart(
          chart.box,
          times,
          groups.map((g, i) => ({ name: this.name(g), values: values[i], colour: COLOURS[this.groups.indexOf(g) % COLOURS.length] })),
          180,
        );
      } else {
        chart.plot.setData([times, ...values] as never);
      }
      // The text alternative: the minutes with any reading, newest first.
      const rows: HTMLElement[] = [];
      for (let i = times.length - 1; i >= 0; i -= 1) {
        if (values.every((row) => row[i] === null)) continue;
        rows.push(
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, clock(times[i] * 1000, false)),
            values.map((row) => h('td', { class: 'num' }, row[i] === null ? '–' : num(row[i] as number))),
          ),
        );
      }
      replace(chart.body, rows);
      const latest = groups
        .map((g) => {
          const l = this.latest(p, g);
          return l.length ? `${this.name(g)} ${num(mean(l.map((r) => r.v)))}` : '';
        })
        .filter(Boolean);
      chart.summary.textContent = latest.length ? t('dash.chart.summary', latest.join(', ')) : t('dash.nodata');
    }
  }
}

/** The panel's section with its heading and description. */
function panelShell(def: PanelDef, extraClass: string): { section: HTMLElement; body: HTMLElement } {
  const headingId = `panel-${def.id}`;
  const body = h('div', { class: 'panel-body' });
  const section = h(
    'section',
    { class: `dash-panel dash-${extraClass}`, id: `p-${def.id}`, 'aria-labelledby': headingId, 'data-kind': def.kind },
    h('h2', { id: headingId, lang: pickLang(def.title) }, pick(def.title)),
    pick(def.description) ? h('p', { class: 'meta-line', lang: pickLang(def.description) }, pick(def.description)) : null,
    body,
  );
  return { section, body };
}

const datasetCache = new Map<string, Promise<Dataset>>();
function datasetOf(slug: string): Promise<Dataset> {
  let p = datasetCache.get(slug);
  if (!p) {
    p = getJson<Dataset>(`/api/v1/datasets/${encodeURIComponent(slug)}`);
    datasetCache.set(slug, p);
  }
  return p;
}

/** Draws a panel of rows of a dataset. */
async function rowsPanel(def: RowsPanelDef, body: HTMLElement): Promise<void> {
  const fields = [...new Set([def.value, ...def.label, ...(def.unit ? [def.unit] : [])])];
  const url = apiUrl(`/api/v1/datasets/${encodeURIComponent(def.dataset)}/resources/${encodeURIComponent(def.resource)}/rows`, {
    ...def.filter,
    _limit: def.limit,
    _fields: fields.join(','),
    _total: 'none',
  });
  const [rows, dataset] = await Promise.all([getJson<Rows>(url), datasetOf(def.dataset).catch(() => null)]);
  const items = rows.records
    .map((r) => ({
      label: def.label.map((c) => String(r[c] ?? '')).filter(Boolean).join(': '),
      value: Number(r[def.value]),
      unit: def.unit ? String(r[def.unit] ?? '') : '',
    }))
    .filter((x) => Number.isFinite(x.value));
  const source = h(
    'p',
    { class: 'meta-line source' },
    t('dash.source', ''),
    h('a', { href: `/datasets/${encodeURIComponent(def.dataset)}`, lang: dataset ? pickLang(dataset.title) : null }, dataset ? pick(dataset.title) || def.dataset : def.dataset),
  );
  if (!items.length) {
    replace(body, h('p', {}, t('dash.norows')), source);
    return;
  }
  // The figures are published in English.
  if (def.kind === 'stat') {
    const x = items[0];
    replace(
      body,
      h('p', { class: 'stat-value' }, formatNumber(x.value), x.unit ? h('span', { class: 'stat-unit', lang: 'en' }, ` ${x.unit}`) : null),
      h('p', { class: 'stat-label', lang: 'en' }, x.label),
      source,
    );
  } else if (def.kind === 'figures') {
    replace(
      body,
      h(
        'dl',
        { class: 'figure-list' },
        items.map((x) => h('div', { class: 'dash-figure' }, h('dt', { lang: 'en' }, x.label), h('dd', {}, formatNumber(x.value), x.unit ? h('span', { class: 'stat-unit', lang: 'en' }, ` ${x.unit}`) : null))),
      ),
      source,
    );
  } else {
    // A bar chart drawn as a table: each row's label, its number and a bar of its share of the
    // largest, so the chart is its own text alternative and long labels wrap on a phone.
    const units = [...new Set(items.map((x) => x.unit).filter(Boolean))];
    const name = `${pick(def.title)}${units.length === 1 ? ` (${units[0]})` : ''}`;
    const labels = trimCommonPrefix(items.map((x) => x.label));
    const max = Math.max(...items.map((x) => Math.abs(x.value)), 0) || 1;
    replace(
      body,
      h(
        'table',
        { class: 'hbars' },
        h('caption', { class: 'visually-hidden' }, name),
        h('thead', { class: 'visually-hidden' }, h('tr', {}, h('th', { scope: 'col' }, t('dash.item')), h('th', { scope: 'col' }, t('dash.value')))),
        h(
          'tbody',
          {},
          items.map((x, i) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row', lang: 'en', title: x.label }, labels[i]),
              h(
                'td',
                {},
                h('span', { class: 'hbar-value', title: formatNumber(x.value) }, compact(x.value), x.unit && units.length > 1 ? h('span', { class: 'stat-unit', lang: 'en' }, ` ${x.unit}`) : null),
                h('span', { class: 'hbar', 'aria-hidden': 'true', style: `width:${((Math.abs(x.value) / max) * 100).toFixed(1)}%` }),
              ),
            ),
          ),
        ),
      ),
      source,
    );
  }
}

/** A large number shortened as the page's language writes it (43.4B, 434億). */
function compact(v: number): string {
  if (Math.abs(v) < 1e6) return formatNumber(v);
  return new Intl.NumberFormat(lang(), { notation: 'compact', maximumFractionDigits: 1 }).format(v);
}

/** Labels without the words they all begin with ("share of funded projects: IT", "...: biotech"). */
function trimCommonPrefix(labels: string[]): string[] {
  if (labels.length < 2) return labels;
  let prefix = labels[0];
  for (const l of labels) while (!l.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const colon = prefix.lastIndexOf(': ');
  const cut = colon >= 0 ? colon + 2 : prefix.endsWith(' ') ? prefix.length : prefix.lastIndexOf(' ') + 1;
  return cut > 0 && labels.every((l) => l.length > cut) ? labels.map((l) => l.slice(cut)) : labels;
}

function statusText(s: LiveState | 'paused'): string {
  switch (s) {
    case 'live':
      return t('dash.live');
    case 'connecting':
      return t('dash.connecting');
    case 'reconnecting':
      return t('dash.reconnecting');
    case 'paused':
      return t('dash.paused');
    default:
      return t('dash.closed');
  }
}

function notFound(main: HTMLElement, id: string): void {
  setTitle(t('dash.notfound'));
  replace(
    main,
    h('h1', {}, t('dash.notfound')),
    h('p', { class: 'dash-notfound' }, t('dash.notfound.text', id)),
    h('p', {}, h('a', { href: '/dashboards/city' }, t('dash.city'))),
  );
}

export async function render(main: HTMLElement, [id]: string[]): Promise<void> {
  // The list first: an unknown id is told without a failed request in the console.
  const list = await getJson<{ dashboards: Summary[] }>('/api/v1/dashboards').catch(() => null);
  if (list && !list.dashboards.some((d) => d.id === id)) {
    notFound(main, id);
    return;
  }
  let def: DashboardDef;
  try {
    def = await getJson<DashboardDef>(`/api/v1/dashboards/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      notFound(main, id);
      return;
    }
    throw err;
  }
  setTitle(pick(def.title));
  const live = def.panels.filter((p): p is LivePanelDef => p.kind === 'live');
  const status = h('span', { class: 'live-status', 'data-state': 'connecting' }, statusText('connecting'));
  const pause = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false' }, t('dash.pause'));
  const others = h('nav', { class: 'dash-others', 'aria-label': t('dash.others') });

  // Consecutive stat panels share one strip.
  const layout: HTMLElement[] = [];
  const jobs: Promise<void>[] = [];
  const livePanels: { def: LivePanelDef; body: HTMLElement }[] = [];
  let strip: HTMLElement | null = null;
  for (const p of def.panels) {
    if (p.kind === 'stat') {
      if (!strip) {
        strip = h('div', { class: 'dash-stats' });
        layout.push(strip);
      }
      const { section, body } = panelShell(p, 'stat');
      body.append(t('loading'));
      strip.append(section);
      jobs.push(rowsPanel(p, body).catch((e) => replace(body, errorBox(e))));
      continue;
    }
    strip = null;
    const { section, body } = panelShell(p, p.kind);
    body.append(t('loading'));
    layout.push(section);
    if (p.kind === 'live') livePanels.push({ def: p, body });
    else jobs.push(rowsPanel(p, body).catch((e) => replace(body, errorBox(e))));
  }

  replace(
    main,
    h('h1', { lang: pickLang(def.title) }, pick(def.title)),
    pick(def.description) ? h('p', { class: 'dash-lead', lang: pickLang(def.description) }, pick(def.description)) : null,
    others,
    live.length ? h('div', { class: 'dash-bar', role: 'status' }, h('span', { class: 'visually-hidden' }, t('dash.status', '')), status) : null,
    live.length ? h('div', { class: 'dash-controls' }, pause) : null,
    h('div', { class: 'dash-grid' }, layout),
  );
  if (list && list.dashboards.length > 1) {
    replace(
      others,
      h('ul', {}, list.dashboards.map((d) => h('li', {}, h('a', { href: d.url, 'aria-current': d.id === def.id ? 'page' : null, lang: pickLang(d.title) }, pick(d.title))))),
    );
  } else {
    others.remove();
  }

  if (livePanels.length) jobs.push(startLive(livePanels, status, pause));
  await Promise.all(jobs);
}

/** Finds the streams of every live panel, seeds them, and follows them on one SSE stream. */
async function startLive(panels: { def: LivePanelDef; body: HTMLElement }[], status: HTMLElement, pause: HTMLButtonElement): Promise<void> {
  const abort = new AbortController();
  // The Datastreams of all panels share one stream: per-group counts are cut when they would not fit.
  let found: Stream[][];
  try {
    found = await Promise.all(panels.map((p) => discover(p.def, abort.signal)));
  } catch (e) {
    for (const p of panels) replace(p.body, errorBox(e));
    status.dataset.state = 'closed';
    status.textContent = statusText('closed');
    return;
  }
  const wanted = panels.map((p) => p.def.per_group);
  let chosen = found.map((f, i) => choose(f, wanted[i]));
  for (let n = chosen.flat().length; n > MAX_FOLLOWED && wanted.some((w) => w > 1); n = chosen.flat().length) {
    for (let i = 0; i < wanted.length; i += 1) wanted[i] = Math.max(1, wanted[i] - 1);
    chosen = found.map((f, i) => choose(f, wanted[i]));
  }
  const views = panels.map((p, i) => {
    replace(p.body);
    return new LivePanel(p.def, chosen[i].slice(0, MAX_FOLLOWED), p.body);
  });
  const byStream = new Map<number, LivePanel[]>();
  for (const v of views) for (const id of v.streams.keys()) byStream.set(id, [...(byStream.get(id) ?? []), v]);
  const ids = [...byStream.keys()].slice(0, MAX_FOLLOWED);

  // The past minutes first, so that charts are not empty; live readings may overlap them.
  await Promise.all(
    views.map(async (v, i) => {
      const since = Date.now() - panels[i].def.window_minutes * 60_000;
      try {
        v.seed(await history([...v.streams.keys()], since, panels[i].def.window_minutes * 4, abort.signal));
      } catch {
        v.seed(new Map());
      }
    }),
  );

  let state: LiveState = ids.length ? 'connecting' : 'closed';
  let paused = false;
  const show = () => {
    const s = paused ? 'paused' : state;
    status.dataset.state = s;
    status.textContent = statusText(s);
  };
  const feed = new LiveFeed(
    ids,
    (ds, r) => {
      for (const v of byStream.get(ds) ?? []) v.add(ds, r);
    },
    (s) => {
      state = s;
      show();
    },
    // The server no longer held everything missed while the stream was away: read it back.
    (ds) => {
      const owners = byStream.get(ds) ?? [];
      const minutes = Math.max(...owners.map((v) => v.windowMinutes));
      history([ds], Date.now() - minutes * 60_000, minutes * 4, abort.signal)
        .then((past) => {
          for (const r of past.get(ds) ?? []) for (const v of owners) v.add(ds, r);
        })
        .catch(() => {});
    },
  );
  show();
  feed.start();
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? t('dash.resume') : t('dash.pause');
    for (const v of views) {
      v.paused = paused;
      if (!paused) v.redraw();
    }
    show();
  });
  const timer = window.setInterval(() => {
    if (document.hidden) return;
    const now = Date.now();
    for (const v of views) v.tick(now);
  }, REDRAW_EVERY_MS);
  window.addEventListener('pagehide', () => {
    window.clearInterval(timer);
    feed.stop();
    abort.abort();
  });
}
