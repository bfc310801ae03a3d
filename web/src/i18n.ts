// The three languages of the UI: the chosen one, the strings of the interface in each, and the choice
// of one text out of the language maps the APIs return (`{"en": ..., "zh-Hant": ..., "zh-Hans": ...}`).
//
// The language comes from `?lang=` (which also remembers it), else the remembered choice, else the
// browser's languages, else English. It is remembered in localStorage and in a cookie, so that the
// server writes the right `<html lang>` before any script runs.

export type Lang = 'en' | 'zh-Hant' | 'zh-Hans';

/** The languages, each named in itself. */
export const LANGS: { code: Lang; name: string }[] = [
  { code: 'en', name: 'English' },
  { code: 'zh-Hant', name: '繁體中文' },
  { code: 'zh-Hans', name: '简体中文' },
];

const STORE_KEY = 'citydata.lang';

/** Maps a language tag (`zh-HK`, `zh-TW`, `zh-CN`, `en-GB`, ...) to one of ours, or null. */
export function normaliseLang(tag: string | null | undefined): Lang | null {
  if (!tag) return null;
  const t = tag.trim().toLowerCase();
  if (t === 'en' || t.startsWith('en-')) return 'en';
  if (t === 'zh-hans' || t.startsWith('zh-hans') || t === 'zh-cn' || t === 'zh-sg' || t === 'zh-my') {
    return 'zh-Hans';
  }
  if (t === 'zh' || t.startsWith('zh-')) return 'zh-Hant';
  return null;
}

function readStored(): Lang | null {
  try {
    return normaliseLang(localStorage.getItem(STORE_KEY));
  } catch {
    return null;
  }
}

function remember(lang: Lang): void {
  try {
    localStorage.setItem(STORE_KEY, lang);
  } catch {
    // Storage can be refused (private mode); the cookie still carries the choice.
  }
  document.cookie = `lang=${encodeURIComponent(lang)}; path=/; max-age=31536000; samesite=lax`;
}

function detect(): Lang {
  const fromUrl = normaliseLang(new URLSearchParams(location.search).get('lang'));
  if (fromUrl) {
    remember(fromUrl);
    return fromUrl;
  }
  const stored = readStored();
  if (stored) return stored;
  for (const l of navigator.languages ?? []) {
    const n = normaliseLang(l);
    if (n) return n;
  }
  return 'en';
}

let current: Lang = detect();

/** The language of this page. */
export function lang(): Lang {
  return current;
}

type Strings = Record<string, [en: string, hant: string, hans: string]>;

const strings: Strings = {
  'site.name': ['citydata Hong Kong', 'citydata 香港', 'citydata 香港'],
  'site.tagline': [
    'Open data of the city: find it, query it, map it, watch it live.',
    '城市開放數據：搜尋、查詢、地圖、即時監察。',
    '城市开放数据：搜索、查询、地图、实时监察。',
  ],
  'skip': ['Skip to content', '跳至內容', '跳至内容'],
  'nav.label': ['Main', '主選單', '主菜单'],
  'nav.home': ['Home', '首頁', '首页'],
  'nav.datasets': ['Datasets', '數據集', '数据集'],
  'nav.map': ['Map', '地圖', '地图'],
  'nav.dashboard': ['City dashboard', '城市儀表板', '城市仪表板'],
  'nav.api': ['API', 'API', 'API'],
  'lang.label': ['Language', '語言', '语言'],
  'loading': ['Loading…', '載入中…', '载入中…'],
  'error.load': ['Could not load: {0}', '無法載入：{0}', '无法载入：{0}'],
  'error.notfound': ['Page not found', '找不到頁面', '找不到页面'],
  'error.notfound.text': [
    'There is no page at this address. Try the dataset search.',
    '此地址沒有頁面。請試用數據集搜尋。',
    '此地址没有页面。请试用数据集搜索。',
  ],
  'search.label': ['Search datasets', '搜尋數據集', '搜索数据集'],
  'search.placeholder': ['e.g. air quality, 醫院, libraries', '例如：空氣質素、hospital、圖書館', '例如：空气质素、hospital、图书馆'],
  'search.button': ['Search', '搜尋', '搜索'],
  'home.featured': ['Featured datasets', '精選數據集', '精选数据集'],
  'home.figures': ['The city in figures', '城市數字', '城市数字'],
  'home.recent': ['Recently updated', '最近更新', '最近更新'],
  'home.all': ['All {0} datasets', '全部 {0} 個數據集', '全部 {0} 个数据集'],
  'home.explore': ['Explore', '探索', '探索'],
  'home.map.text': ['Layers of the city on one map, buildings in 3D.', '城市圖層同置一圖，建築物以立體顯示。', '城市图层同置一图，建筑物以立体显示。'],
  'home.dash.text': ['Live readings of the smart lampposts.', '智慧燈柱的即時讀數。', '智慧灯柱的实时读数。'],
  'fig.datasets': ['Datasets', '數據集', '数据集'],
  'fig.organizations': ['Publishing organisations', '發布機構', '发布机构'],
  'fig.features': ['Mapped features', '地圖要素', '地图要素'],
  'fig.sensors': ['Live datastreams', '即時數據流', '实时数据流'],
  'datasets.title': ['Datasets', '數據集', '数据集'],
  'datasets.count': ['{0} datasets', '{0} 個數據集', '{0} 个数据集'],
  'datasets.none': ['No dataset matches.', '沒有相符的數據集。', '没有相符的数据集。'],
  'datasets.filters': ['Filters', '篩選', '筛选'],
  'datasets.clear': ['Clear all filters', '清除所有篩選', '清除所有筛选'],
  'datasets.sort': ['Sort by', '排序', '排序'],
  'sort.relevance': ['Relevance', '相關程度', '相关程度'],
  'sort.modified': ['Last updated', '最後更新', '最后更新'],
  'sort.title': ['Title', '標題', '标题'],
  'facet.organization': ['Organisation', '機構', '机构'],
  'facet.tag': ['Tag', '標籤', '标签'],
  'facet.format': ['Format', '格式', '格式'],
  'facet.theme': ['Theme', '主題', '主题'],
  'facet.license': ['Licence', '授權', '授权'],
  'paging.label': ['Pages', '分頁', '分页'],
  'paging.prev': ['Previous', '上一頁', '上一页'],
  'paging.next': ['Next', '下一頁', '下一页'],
  'paging.page': ['Page {0}', '第 {0} 頁', '第 {0} 页'],
  'paging.of': ['Page {0} of {1}', '第 {0} 頁，共 {1} 頁', '第 {0} 页，共 {1} 页'],
  'dataset.meta': ['About this dataset', '關於此數據集', '关于此数据集'],
  'dataset.organization': ['Organisation', '機構', '机构'],
  'dataset.license': ['Licence', '授權', '授权'],
  'dataset.frequency': ['Update frequency', '更新頻率', '更新频率'],
  'dataset.theme': ['Theme', '主題', '主题'],
  'dataset.tags': ['Tags', '標籤', '标签'],
  'dataset.source': ['Source', '來源', '来源'],
  'dataset.modified': ['Last updated', '最後更新', '最后更新'],
  'dataset.created': ['First published', '首次發布', '首次发布'],
  'dataset.resources': ['Resources', '資源', '资源'],
  'dataset.rows': ['{0} rows', '{0} 行', '{0} 行'],
  'dataset.rowcount': ['Rows', '行數', '行数'],
  'dataset.download': ['Download', '下載', '下载'],
  'dataset.versions': ['Version history', '版本紀錄', '版本记录'],
  'dataset.version': ['Version', '版本', '版本'],
  'dataset.published': ['Published', '發布時間', '发布时间'],
  'dataset.size': ['Size', '大小', '大小'],
  'dataset.file': ['File', '檔案', '档案'],
  'dataset.checksum': ['SHA-256', 'SHA-256', 'SHA-256'],
  'dataset.preview': ['Preview', '預覽', '预览'],
  'dataset.resource': ['Resource', '資源', '资源'],
  'dataset.filter': ['Filter rows', '篩選資料行', '筛选数据行'],
  'dataset.filter.column': ['Column', '欄位', '栏位'],
  'dataset.filter.any': ['Any column (text search)', '任何欄位（全文搜尋）', '任何栏位（全文搜索）'],
  'dataset.filter.op': ['Condition', '條件', '条件'],
  'dataset.filter.value': ['Value', '值', '值'],
  'dataset.filter.apply': ['Apply', '套用', '应用'],
  'dataset.filter.reset': ['Reset', '重設', '重设'],
  'op.contains': ['contains', '包含', '包含'],
  'op.eq': ['equals', '等於', '等于'],
  'op.gt': ['greater than', '大於', '大于'],
  'op.lt': ['less than', '小於', '小于'],
  'dataset.rowsShown': ['Rows {0}–{1} of {2}', '第 {0}–{1} 行，共 {2} 行', '第 {0}–{1} 行，共 {2} 行'],
  'dataset.rowsNone': ['No row matches.', '沒有相符的資料行。', '没有相符的数据行。'],
  'dataset.sortBy': ['Sort by {0}', '按 {0} 排序', '按 {0} 排序'],
  'dataset.chart': ['Quick chart', '快速圖表', '快速图表'],
  'dataset.chart.column': ['Value column', '數值欄位', '数值栏位'],
  'dataset.chart.label': ['Label column', '標籤欄位', '标签栏位'],
  'dataset.chart.none': ['This resource has no numeric column to chart.', '此資源沒有可繪圖的數值欄位。', '此资源没有可绘图的数值栏位。'],
  'dataset.chart.summary': [
    '{0}: {1} values from {2} to {3}, mean {4}.',
    '{0}：{1} 個數值，由 {2} 至 {3}，平均 {4}。',
    '{0}：{1} 个数值，由 {2} 至 {3}，平均 {4}。',
  ],
  'dataset.api': ['Get this data with the API', '以 API 取得此數據', '以 API 取得此数据'],
  'dataset.schema': ['Schema', '結構', '结构'],
  'dataset.field': ['Field', '欄位', '栏位'],
  'dataset.type': ['Type', '類型', '类型'],
  'dataset.description': ['Description', '說明', '说明'],
  'dataset.onmap': ['Show on the map', '在地圖上顯示', '在地图上显示'],
  'dataset.copy': ['Copy', '複製', '复制'],
  'dataset.copied': ['Copied', '已複製', '已复制'],
  'footer.text': [
    'citydata: open data of the Hong Kong demo city. Data: see each dataset\u2019s source and licence.',
    'citydata：香港示範城市的開放數據。資料：見各數據集的來源及授權。',
    'citydata：香港示范城市的开放数据。资料：见各数据集的来源及授权。',
  ],
};

/** Adds the strings of one page (kept beside the page that uses them). */
export function addStrings(more: Strings): void {
  Object.assign(strings, more);
}

const column: Record<Lang, 0 | 1 | 2> = { en: 0, 'zh-Hant': 1, 'zh-Hans': 2 };

/** The interface string `key` in the page's language, `{0}`, `{1}`... replaced by `args`. */
export function t(key: string, ...args: (string | number)[]): string {
  const entry = strings[key];
  const s = entry ? entry[column[current]] : key;
  return s.replace(/\{(\d+)\}/g, (_, i: string) => {
    const v = args[Number(i)];
    return v === undefined ? '' : typeof v === 'number' ? formatNumber(v) : v;
  });
}

/** A number written the way the page's language writes it. */
export function formatNumber(n: number, digits?: number): string {
  return new Intl.NumberFormat(current, digits === undefined ? undefined : { maximumFractionDigits: digits }).format(n);
}

/** A headline number: in full below 100,000, else short (`2.7M`, `270萬`), for narrow cards. */
export function formatCompact(n: number): string {
  if (Math.abs(n) < 100_000) return formatNumber(n);
  return new Intl.NumberFormat(current, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

/** A date and time of the API (RFC 3339) written for the page's language, in Hong Kong time. */
export function formatDate(iso: string, withTime = false): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(current, {
    dateStyle: 'medium',
    timeStyle: withTime ? 'short' : undefined,
    timeZone: 'Asia/Hong_Kong',
  }).format(d);
}

/** A size in bytes, in B, kB, MB or GB. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u += 1;
  }
  return `${formatNumber(v, u === 0 ? 0 : 1)} ${units[u]}`;
}

/** The languages to read a language map in, best first: the page's, the other Chinese script, English. */
function preference(): Lang[] {
  if (current === 'en') return ['en', 'zh-Hant', 'zh-Hans'];
  return current === 'zh-Hant' ? ['zh-Hant', 'zh-Hans', 'en'] : ['zh-Hans', 'zh-Hant', 'en'];
}

/** A language map of the API (or a plain string) read in the page's language. The other Chinese
 *  script comes next, then English, then whatever there is. */
export function pick(text: Record<string, string> | string | null | undefined): string {
  if (text == null) return '';
  if (typeof text === 'string') return text;
  for (const l of preference()) {
    if (text[l]) return text[l];
  }
  const first = Object.values(text).find((v) => v);
  return first ?? '';
}

/** The language tag of the text `pick` chose, for the `lang` attribute of the element holding it. */
export function pickLang(text: Record<string, string> | string | null | undefined): string {
  if (text == null || typeof text === 'string') return current;
  for (const l of preference()) {
    if (text[l]) return l;
  }
  return current;
}
