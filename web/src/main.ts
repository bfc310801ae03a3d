// The entry of the web UI: picks the page for the path and draws it. The map and the dashboards are
// loaded on demand (MapLibre and uPlot stay out of the other pages' download).

import './style.css';
import { ApiError } from './api';
import { h, replace } from './dom';
import { t } from './i18n';
import { errorBox, renderFrame, setTitle } from './layout';

type Page = (main: HTMLElement, params: string[]) => Promise<void> | void;

const ROUTES: [RegExp, () => Promise<{ render: Page }>][] = [
  [/^\/$/, () => import('./pages/home')],
  [/^\/datasets\/?$/, () => import('./pages/datasets')],
  [/^\/datasets\/([^/]+)\/?$/, () => import('./pages/dataset')],
  [/^\/map\/?$/, () => import('./pages/map')],
  [/^\/dashboards\/([^/]+)\/?$/, () => import('./pages/dashboard')],
];

function notFound(main: HTMLElement): void {
  setTitle(t('error.notfound'));
  replace(
    main,
    h('h1', {}, t('error.notfound')),
    h('p', {}, t('error.notfound.text')),
    h('p', {}, h('a', { href: '/datasets' }, t('nav.datasets'))),
  );
}

async function start(): Promise<void> {
  renderFrame();
  const main = document.getElementById('main');
  if (!main) return;
  const path = location.pathname;
  for (const [re, load] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    main.setAttribute('aria-busy', 'true');
    try {
      const page = await load();
      await page.render(main, m.slice(1).map(decodeURIComponent));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) notFound(main);
      else replace(main, errorBox(err));
    } finally {
      main.removeAttribute('aria-busy');
    }
    return;
  }
  notFound(main);
}

void start();
