// `/map`: datasets as layers over a basemap drawn from the city's own data (built in the map issue).

import { h, replace } from '../dom';
import { t } from '../i18n';
import { setTitle } from '../layout';

export function render(main: HTMLElement): void {
  setTitle(t('nav.map'));
  replace(main, h('h1', {}, t('nav.map')));
}
