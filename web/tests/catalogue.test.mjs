// The catalogue pages as a reader walks them: the front page, searching, facets, paging, a dataset
// (metadata, versions, preview sorted and filtered, chart, API calls, JSON-LD), the language
// control, keyboard use and a phone-sized screen; axe-core on every page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  expectAccessible,
  expectNoHorizontalScroll,
  openPage,
  screenshot,
  serverAndBrowser,
  waitFor,
} from './harness.mjs';

const ctx = serverAndBrowser();

async function api(path) {
  const res = await fetch(ctx.server.url + path);
  assert.equal(res.status, 200, path);
  return res.json();
}

test('front page: figures, featured datasets, search leads to results', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  const res = await page.goHere('/');
  // The browser itself refuses scripts and connections from elsewhere.
  assert.match(res.headers()['content-security-policy'], /script-src 'self';.*connect-src 'self'/);
  await page.locator('.figures').waitFor();
  const catalogue = await api('/api/v1/datasets?limit=0');
  const firstFigure = await page.locator('.figure dd').first().textContent();
  assert.equal(firstFigure.replace(/,/g, ''), String(catalogue.count), 'the datasets figure is the catalogue count');
  assert.ok((await page.locator('.card h3 a[href^="/datasets/"]').count()) >= 5, 'featured datasets are listed');
  await expectAccessible(page, 'the front page');
  await screenshot(page, 'home', true);

  await page.getByRole('searchbox', { name: 'Search datasets' }).fill('hospital');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/\/datasets\?q=hospital/);
  await page.locator('#results-count').waitFor();
  const found = await api('/api/v1/datasets?q=hospital&limit=0');
  assert.ok(found.count >= 1);
  assert.equal(await page.locator('#results-count').textContent(), `${found.count} datasets`);
  const titles = await page.locator('.result h2 a').allTextContents();
  assert.ok(titles.some((t) => /Hospital/.test(t)), titles.join(' | '));
  page.expectClean();
  await page.context().close();
});

test('dataset search: a facet filters, paging moves, the URL keeps the state', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  await page.goHere('/datasets');
  await page.locator('#results-count').waitFor();
  const all = await api('/api/v1/datasets?limit=0');
  assert.equal(await page.locator('#results-count').textContent(), `${all.count} datasets`);
  assert.equal(await page.locator('.result').count(), 10, 'ten per page');
  // Organisations are named, not listed by slug.
  const facetText = await page.locator('.facets').textContent();
  assert.ok(facetText.includes('Hospital Authority') && !facetText.includes('citydata-demo'), facetText);

  // Page 2 by the pager.
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Next' }).click();
  await page.waitForURL(/page=2/);
  await waitFor(page, () => document.querySelector('.pager .current')?.textContent === '2');

  // A facet: the format GeoJSON.
  const geo = await api('/api/v1/datasets?limit=0&format=geojson');
  assert.ok(geo.count > 0 && geo.count < all.count);
  await page.locator('.facets input[name="format"][value="geojson"]').check();
  await page.waitForURL(/format=geojson/);
  await waitFor(page, (n) => document.querySelector('#results-count')?.textContent === `${n} datasets`, geo.count);
  assert.ok(!page.url().includes('page=2'), 'a new filter starts at page 1');
  await expectAccessible(page, 'the dataset search');
  await screenshot(page, 'datasets');

  // Back goes to the unfiltered page 2; a fresh load of the filtered URL gives the same results.
  await page.goBack();
  await waitFor(page, (n) => document.querySelector('#results-count')?.textContent === `${n} datasets`, all.count);
  await page.goHere('/datasets?format=geojson');
  await waitFor(page, (n) => document.querySelector('#results-count')?.textContent === `${n} datasets`, geo.count);
  assert.ok(await page.locator('.facets input[value="geojson"]').isChecked());
  page.expectClean();
  await page.context().close();
});

test('a dataset: metadata, versions, preview sorted and filtered, chart, API calls, JSON-LD', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  const d = await api('/api/v1/datasets/hospitals');
  const r = d.resources[0];
  await page.goHere('/datasets/hospitals');
  await page.getByRole('heading', { level: 1, name: d.title.en }).waitFor();
  assert.match(await page.title(), /Hospitals under the Hospital Authority/);

  // JSON-LD for search engines, written by the server.
  const ld = JSON.parse(await page.locator('script[type="application/ld+json"]').textContent());
  assert.equal(ld['@type'], 'Dataset');
  assert.equal(ld.name, d.title.en);
  assert.ok(ld.distribution[0].contentUrl.endsWith(r.download_url));

  // Resources and versions with downloads that give the original bytes.
  const download = page.locator(`a[href="${r.download_url}"]`).first();
  assert.ok(await download.isVisible());
  const bytes = await (await fetch(ctx.server.url + r.download_url)).arrayBuffer();
  assert.equal(bytes.byteLength, r.versions[0].bytes);
  await page.getByText(/Version history/).first().click();
  assert.equal(await page.locator('details[open] tbody tr').count(), r.versions.length);

  // The preview: 20 rows, sorted by a column when its header is pressed, then filtered.
  const table = page.getByRole('region', { name: 'Preview' });
  await table.locator('tbody tr').first().waitFor();
  assert.equal(await table.locator('tbody tr').count(), Math.min(20, r.row_count));
  const sortButton = table.getByRole('button', { name: 'Sort by Facility Name' });
  await sortButton.click();
  await waitFor(page, () => document.querySelector('th[aria-sort="ascending"]') !== null);
  const sorted = await api(`${r.rows_url}?_sort=Facility%20Name&_limit=3`);
  const column = await table.locator('thead th').allTextContents();
  const idx = column.findIndex((c) => c.startsWith('Facility Name'));
  const firstCell = await table.locator(`tbody tr:first-child td:nth-child(${idx + 1})`).textContent();
  assert.equal(firstCell, sorted.records[0]['Facility Name']);
  await table.getByRole('button', { name: 'Sort by Facility Name' }).click();
  await waitFor(page, () => document.querySelector('th[aria-sort="descending"]') !== null);

  await page.getByLabel('Column', { exact: true }).selectOption('Cluster');
  await page.getByLabel('Condition', { exact: true }).selectOption('eq');
  await page.getByLabel('Value', { exact: true }).fill('KOWLOON CENTRAL CLUSTER');
  await page.getByRole('button', { name: 'Apply' }).click();
  const filtered = await api(`${r.rows_url}?Cluster=KOWLOON%20CENTRAL%20CLUSTER&_limit=0`);
  assert.ok(filtered.total > 0 && filtered.total < r.row_count);
  await waitFor(page, (n) => document.querySelectorAll('#preview tbody tr').length === n, Math.min(20, filtered.total));
  assert.match(await page.locator('#preview [role="status"]').textContent(), new RegExp(`of ${filtered.total}$`));

  // API calls for the same data, and the spatial ones since it is spatial.
  const calls = await page.locator('#api pre').allTextContents();
  assert.ok(calls.some((c) => c.includes('/api/3/action/datastore_search?resource_id=')), calls.join('\n'));
  assert.ok(calls.some((c) => c.includes('/ogc/collections/hospitals/items')));
  await expectAccessible(page, 'a dataset page');
  await screenshot(page, 'dataset', true);
  page.expectClean();
  await page.context().close();
});

test('quick chart of a numeric column, with a text alternative', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  await page.goHere('/datasets/innovation-funding');
  const chart = page.locator('#chart');
  await chart.scrollIntoViewIfNeeded();
  await chart.locator('canvas').first().waitFor();
  const rows = await api('/api/v1/datasets/innovation-funding/resources/figures/rows?_limit=500');
  const summary = await chart.locator('p.meta-line').textContent();
  assert.match(summary, new RegExp(`^value: ${rows.records.length} values from`), summary);
  assert.ok(await chart.locator('[role="img"][aria-label]').count());
  await expectAccessible(page, 'a dataset page with a chart');
  page.expectClean();
  await page.context().close();
});

test('language: the links in the header switch every string, the choice is remembered, ?lang= works', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  await page.goHere('/datasets/hospitals');
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.getByRole('navigation', { name: 'Language' }).getByRole('link', { name: '繁體中文' }).click();
  await page.waitForURL(/lang=zh-Hant/);
  await page.getByRole('heading', { level: 1, name: '醫院管理局轄下的醫院' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-Hant');
  assert.equal(await page.getByRole('navigation', { name: '主選單' }).getByRole('link', { name: '數據集' }).count(), 1);
  // Remembered without the parameter, also by the server (the title it writes).
  await page.goHere('/datasets');
  await page.locator('#results-count').waitFor();
  assert.match(await page.locator('#results-count').textContent(), /個數據集$/);
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-Hant');
  await expectAccessible(page, 'the dataset search in Traditional Chinese');
  await page.goHere('/?lang=zh-Hans');
  await page.locator('.figures').waitFor();
  assert.equal(await page.getByRole('heading', { level: 2, name: '城市数字' }).count(), 1);
  await screenshot(page, 'home-zh-Hans');
  await page.getByRole('navigation', { name: '语言' }).getByRole('link', { name: 'English' }).click();
  await page.waitForURL(/lang=en/);
  await page.getByRole('heading', { level: 2, name: 'The city in figures' }).waitFor();
  page.expectClean();
  await page.context().close();
});

test('keyboard: the skip link comes first and moves focus to the content; focus is visible', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  await page.goHere('/datasets');
  await page.locator('#results-count').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'the focused skip link shows a focus ring');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
  // Tabbing on reaches the search box, then a facet checkbox, which the space bar ticks.
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement?.matches('.facets input'))) break;
  }
  assert.ok(await page.evaluate(() => document.activeElement?.matches('.facets input')), 'a facet is reachable by Tab');
  await page.keyboard.press('Space');
  await page.waitForURL(/organization=|tag=|format=|theme=|license=/);
  page.expectClean();
  await page.context().close();
});

test('phone: 375 px wide, no page scrolls sideways', async () => {
  const page = await openPage(ctx.browser, ctx.server, { width: 375, height: 812 });
  for (const [path, ready, name] of [
    ['/', '.figures', 'phone-home'],
    ['/datasets?q=school', '#results-count', 'phone-datasets'],
    ['/datasets/hospitals', '#preview tbody tr', 'phone-dataset'],
    ['/datasets/innovation-funding?lang=zh-Hant', '#preview tbody tr', 'phone-dataset-zh'],
  ]) {
    await page.goHere(path);
    await page.locator(ready).first().waitFor();
    await expectNoHorizontalScroll(page, path);
    await screenshot(page, name, true);
  }
  await expectAccessible(page, 'a dataset page on a phone');
  page.expectClean();
  await page.context().close();
});

test('an unknown dataset is a 404 page that says so', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  const res = await page.goHere('/datasets/no-such-thing');
  assert.equal(res.status(), 404);
  await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
  await expectAccessible(page, 'the 404 page');
  // The API's 404 shows in the console as a failed resource load: that one is expected here.
  assert.ok(page.problems().every((p) => /404/.test(p)), page.problems().join('\n'));
  await page.context().close();
});
