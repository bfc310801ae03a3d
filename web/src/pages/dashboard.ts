// `/dashboards/{id}`: live panels of a dashboard definition.

import { h, replace } from '../dom';
import { t } from '../i18n';
import { setTitle } from '../layout';

export function render(main: HTMLElement): void {
  setTitle(t('nav.dashboard'));
  replace(main, h('h1', {}, t('nav.dashboard')));
}
