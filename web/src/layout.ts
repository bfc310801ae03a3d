// The frame of every page: skip link, header with the navigation and the language control, footer,
// and the page title.

import { h, replace } from './dom';
import { LANGS, lang, t } from './i18n';

/** The navigation entries: label key and path. */
const NAV: [string, string][] = [
  ['nav.home', '/'],
  ['nav.datasets', '/datasets'],
  ['nav.map', '/map'],
  ['nav.dashboard', '/dashboards/city'],
];

/** Whether the nav entry `path` is the section of the current page. */
function isCurrent(path: string): boolean {
  const here = location.pathname;
  return path === '/' ? here === '/' : here === path || here.startsWith(`${path}/`) || (path.startsWith('/dashboards') && here.startsWith('/dashboards'));
}

/** Draws the header and footer in the page's language. */
export function renderFrame(): void {
  document.documentElement.lang = lang();
  const skip = document.querySelector<HTMLAnchorElement>('.skip-link');
  if (skip) skip.textContent = t('skip');

  // Links, not a select that navigates on change (WCAG 3.2.2): each keeps the page and its state;
  // the page remembers a `?lang=` it is opened with.
  const langLinks = h(
    'ul',
    {},
    LANGS.map((l) => {
      const url = new URL(location.href);
      url.searchParams.set('lang', l.code);
      return h(
        'li',
        {},
        h(
          'a',
          {
            href: url.pathname + url.search,
            lang: l.code,
            hreflang: l.code,
            'aria-current': l.code === lang() ? 'true' : null,
          },
          l.name,
        ),
      );
    }),
  );
  const header = document.getElementById('site-header');
  if (header) {
    replace(
      header,
      h(
        'div',
        { class: 'header-inner' },
        h('a', { class: 'brand', href: '/' }, h('img', { src: '/favicon.svg', alt: '', width: 28, height: 28 }), t('site.name')),
        h(
          'nav',
          { 'aria-label': t('nav.label') },
          h(
            'ul',
            {},
            NAV.map(([key, path]) =>
              h('li', {}, h('a', { href: path, 'aria-current': isCurrent(path) ? 'page' : null }, t(key))),
            ),
          ),
        ),
        h('nav', { class: 'lang', 'aria-label': t('lang.label') }, langLinks),
      ),
    );
  }
  const footer = document.getElementById('site-footer');
  if (footer) {
    replace(
      footer,
      h(
        'div',
        { class: 'footer-inner' },
        h('p', {}, t('footer.text')),
        h(
          'p',
          {},
          h('a', { href: '/api/openapi.json' }, 'OpenAPI'),
          ' · ',
          h('a', { href: '/api/3/action/package_list' }, 'CKAN API'),
          ' · ',
          h('a', { href: '/catalog' }, 'DCAT'),
          ' · ',
          h('a', { href: '/ogc' }, 'OGC API Features'),
          ' · ',
          h('a', { href: '/sta/v1.1' }, 'SensorThings API'),
        ),
      ),
    );
  }
}

/** Sets the document title: `name · citydata`. */
export function setTitle(name: string): void {
  document.title = name ? `${name} · ${t('site.name')}` : t('site.name');
}

/** An error box for a page part that failed to load. */
export function errorBox(err: unknown): HTMLElement {
  const msg = err instanceof Error ? err.message : String(err);
  return h('p', { class: 'error', role: 'alert' }, t('error.load', msg));
}
