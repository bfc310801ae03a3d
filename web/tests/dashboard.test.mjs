// The city dashboard as a reader watches it: live panels of lamppost readings that change by
// themselves, panels of the innovation figures, text alternatives for every chart, the live status,
// axe-core, a phone-sized screen, another language, and an unknown dashboard.
//
// The server runs without its simulator, so the test makes its own lampposts through the
// SensorThings API (one area named by a Thing property, one only in the Thing's description, as
// lampposts of older servers are) and posts their readings itself: the values on screen are known.

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

/** Datastream ids by area and ObservedProperty name. */
const streams = {};

const PROPERTIES = [
  ['PM2.5', 'µg/m³', 12.5],
  ['NO2', 'µg/m³', 30],
  ['AQHI', 'AQHI', 3],
  ['Traffic flow', 'veh/min', 10],
  ['Traffic speed', 'km/h', 55],
];
const AREAS = [
  ['Kowloon East', true],
  ['Central', false],
];

async function sta(method, path, body) {
  const res = await fetch(`${ctx.server.url}/sta/v1.1/${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function observe(datastream, result, at = new Date()) {
  await sta('POST', 'Observations', { phenomenonTime: at.toISOString(), result, Datastream: { '@iot.id': datastream } });
}

// One server and browser for the file; the lampposts and their history are made once both are up.
const ctx = serverAndBrowser({}, async () => {
  const sensor = await sta('POST', 'Sensors', { name: 'Test sensor', description: 'for the browser test', encodingType: 'text/html', metadata: 'none' });
  const props = {};
  for (const [name] of PROPERTIES) {
    props[name] = (await sta('POST', 'ObservedProperties', { name, definition: `urn:test:${name}`, description: name }))['@iot.id'];
  }
  for (const [i, [area, asProperty]] of AREAS.entries()) {
    const thing = await sta('POST', 'Things', {
      name: `Test lamppost ${i}`,
      description: `Smart lamppost T${i} in ${area} (test readings)`,
      properties: asProperty ? { network: 'smart-lampposts', area } : { network: 'smart-lampposts' },
      Datastreams: PROPERTIES.map(([name, symbol]) => ({
        name: `${name} at T${i}`,
        description: name,
        observationType: 'http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement',
        unitOfMeasurement: { name: symbol, symbol, definition: 'urn:test' },
        Sensor: { '@iot.id': sensor['@iot.id'] },
        ObservedProperty: { '@iot.id': props[name] },
      })),
    });
    const list = await sta('GET', `Things(${thing['@iot.id']})/Datastreams?$expand=ObservedProperty($select=name)&$select=id`);
    streams[area] = Object.fromEntries(list.value.map((d) => [d.ObservedProperty.name, d['@iot.id']]));
  }
  // A few minutes of history, so that the charts have lines from the start.
  for (const [i, [area]] of AREAS.entries()) {
    for (const [name, , base] of PROPERTIES) {
      for (let m = 5; m >= 1; m -= 1) await observe(streams[area][name], base + 3 * i + m / 2, new Date(Date.now() - m * 60_000));
    }
  }
});

/** The text of the card of `area` in the live block of `property`. */
function card(page, property, area) {
  return page
    .locator('.live-prop', { has: page.locator('h3', { hasText: new RegExp(`^${property.replace('.', '\\.')}`) }) })
    .locator('.live-card', { has: page.locator('.live-group', { hasText: area }) });
}

test('the city dashboard: live values change by themselves, figures and text alternatives are there', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  await page.goHere('/dashboards/city');
  await page.getByRole('heading', { level: 1, name: 'The city live' }).waitFor();
  await waitFor(page, () => document.querySelector('.live-status')?.dataset.state === 'live');
  assert.equal(await page.locator('.live-status').textContent(), 'Live');

  // Both areas are found: one by its Thing property, one by its description.
  const pm = card(page, 'PM2.5', 'Kowloon East');
  await pm.locator('.live-value[data-value]').waitFor();
  assert.equal(await pm.locator('.live-value').textContent(), '13', 'the latest of the history (12.5 + 0.5)');
  assert.equal(await card(page, 'PM2.5', 'Central').locator('.live-value').textContent(), '16');
  assert.equal(await page.locator('#p-air .live-card').count(), 6, 'three properties by two areas');
  assert.equal(await page.locator('#p-traffic .live-card').count(), 4);

  // A new reading shows by itself, without a reload.
  const before = await pm.locator('.live-time').getAttribute('data-time');
  await observe(streams['Kowloon East']['PM2.5'], 77.7);
  await waitFor(page, () => {
    const prop = [...document.querySelectorAll('#p-air .live-prop')].find((p) => p.querySelector('h3')?.textContent?.startsWith('PM2.5'));
    const c = [...(prop?.querySelectorAll('.live-card') ?? [])].find((x) => x.querySelector('.live-group')?.textContent === 'Kowloon East');
    return c?.querySelector('.live-value')?.textContent === '77.7';
  }, undefined, 20_000);
  assert.notEqual(await pm.locator('.live-time').getAttribute('data-time'), before);
  assert.equal(await card(page, 'PM2.5', 'Central').locator('.live-value').textContent(), '16', 'another area is left alone');
  await observe(streams.Central['Traffic flow'], 31);
  await waitFor(page, () => [...document.querySelectorAll('#p-traffic .live-value')].some((v) => v.textContent === '31'), undefined, 20_000);

  // Every chart has a text alternative: a label, and its numbers as a table.
  const charts = page.locator('.live-chart');
  assert.equal(await charts.count(), 5);
  for (let i = 0; i < 5; i += 1) {
    const label = await charts.nth(i).getAttribute('aria-label');
    assert.match(label, /mean per minute by area, last 30 minutes/);
    assert.equal(await charts.nth(i).getAttribute('role'), 'img');
  }
  const tables = page.locator('#p-air details.chart-table table');
  assert.equal(await tables.count(), 3);
  await waitFor(page, () => document.querySelectorAll('#p-air details.chart-table tbody tr').length >= 3 * 5);
  assert.match(await tables.first().locator('thead').textContent(), /Central.*Kowloon East/);
  assert.equal(await page.locator('.dash-live [aria-live="polite"]').count(), 2, 'one polite region per live panel');

  // The panels of figures: headline numbers, bars drawn as a table, figures with their units.
  assert.equal(await page.locator('#p-iam-smart .stat-value').textContent(), '2,700,000 people');
  const bars = page.locator('#p-itf-shares table.hbars');
  assert.match(await bars.locator('caption').textContent(), /R&D projects funded by the ITF, by field \(percent\)/);
  assert.deepEqual(await bars.locator('tbody th').allTextContents(), ['information technology', 'electrical and electronics', 'manufacturing technology', 'biotechnology']);
  assert.equal(await page.locator('#p-research .dash-figure').count(), 5);
  assert.match(await page.locator('#p-research .source a').textContent(), /Research/);

  // Pausing stops the updates and says so; resuming shows what came meanwhile.
  await page.getByRole('button', { name: 'Pause live updates' }).click();
  assert.equal(await page.locator('.live-status').textContent(), 'Paused');
  await observe(streams['Kowloon East']['PM2.5'], 5.5);
  await page.waitForTimeout(1500);
  assert.equal(await pm.locator('.live-value').textContent(), '77.7');
  await page.getByRole('button', { name: 'Resume live updates' }).click();
  await waitFor(page, () => [...document.querySelectorAll('#p-air .live-value')].some((v) => v.textContent === '5.5'));

  await expectAccessible(page, 'the city dashboard');
  await screenshot(page, 'dashboard', true);
  page.expectClean();
  await page.context().close();
});

test('the dashboard on a 375 px phone, in Traditional Chinese', async () => {
  const page = await openPage(ctx.browser, ctx.server, { width: 375, height: 800 });
  await page.goHere('/dashboards/city?lang=zh-Hant');
  await page.getByRole('heading', { level: 1, name: '城市實況' }).waitFor();
  await waitFor(page, () => document.querySelector('.live-status')?.dataset.state === 'live');
  assert.equal(await page.locator('.live-status').textContent(), '即時');
  await page.locator('#p-research .dash-figure').first().waitFor();
  await page.locator('#p-air .live-value[data-value]').first().waitFor();
  // Areas and properties are named in the page's language, as the definition gives them.
  assert.deepEqual(await page.locator('#p-air .live-prop').first().locator('.live-group').allTextContents(), ['中環', '九龍東']);
  assert.match(await page.locator('#p-traffic h3').first().textContent(), /^車流量/);
  assert.match(await page.locator('#p-air .live-chart').first().getAttribute('aria-label'), /^微細懸浮粒子 \(PM2\.5\)（µg\/m³），按地區劃分的每分鐘平均值，最近 30 分鐘$/);
  await expectNoHorizontalScroll(page, 'the dashboard at 375 px');
  // One column: every panel starts at the same left edge.
  const lefts = await page.locator('.dash-panel').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert.equal(new Set(lefts).size, 1, `panels side by side: ${lefts}`);
  await expectAccessible(page, 'the dashboard on a phone');
  await screenshot(page, 'dashboard-phone', true);
  page.expectClean();
  await page.context().close();
});

test('an unknown dashboard says so', async () => {
  const page = await openPage(ctx.browser, ctx.server);
  const doc = await page.goHere('/dashboards/no-such-board');
  assert.equal(doc.status(), 404, 'the page itself is a 404');
  await page.getByRole('heading', { level: 1, name: 'Dashboard not found' }).waitFor();
  assert.match(await page.locator('main').textContent(), /There is no dashboard “no-such-board”/);
  assert.equal(await page.locator('main a[href="/dashboards/city"]').count(), 1);
  const res = await fetch(`${ctx.server.url}/api/v1/dashboards/no-such-board`);
  assert.equal(res.status, 404);
  await expectAccessible(page, 'an unknown dashboard');
  // The page's and the API's 404s show in the console as failed loads: those are expected here.
  assert.ok(page.problems().every((p) => /404/.test(p)), page.problems().join('\n'));
  await page.context().close();
});
