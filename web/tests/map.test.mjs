// The map page in a real browser (headless Chromium, software GL) against a real server with the
// demo loaded: the basemap draws buildings and districts, a data layer turns on and off from the
// keyboard, a click opens a popup with the feature's properties as a table, the district list and
// the address search fly there, axe finds no serious or critical violation, and on a 375 px phone
// nothing scrolls sideways. Nothing is fetched from anywhere but the server (the harness refuses it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  expectAccessible,
  expectNoHorizontalScroll,
  openPage,
  screenshot,
  serverAndBrowser,
} from './harness.mjs';

/** The data layer the test turns on: hundreds of points, many in the city centre. */
const LAYER = 'smart-lampposts';

const ctx = serverAndBrowser();

/** Opens `path` at the viewport size and waits until the map and its layers are drawn. */
async function open(path, width, height) {
  const page = await openPage(ctx.browser, ctx.server, { width, height });
  await page.goHere(path);
  await page.waitForSelector('#map-canvas[data-state=loaded]', { timeout: 60_000 });
  await idle(page);
  return page;
}

/** Waits until the map has drawn everything it was asked to (no tile loading, no animation). */
async function idle(page) {
  await page.waitForFunction(() => window.citydataMap?.loaded() && !window.citydataMap.isMoving(), null, { timeout: 60_000 });
  await page.evaluate(
    () => new Promise((resolve) => {
      const map = window.citydataMap;
      if (map.areTilesLoaded() && !map.isMoving()) resolve();
      else map.once('idle', () => resolve());
      map.triggerRepaint();
    }),
  );
}

/** How many features of `layer` are drawn in the viewport (-1 when the layer does not exist). */
function rendered(page, layer) {
  return page.evaluate((l) => {
    const map = window.citydataMap;
    return map.getLayer(l) ? map.queryRenderedFeatures({ layers: [l] }).length : -1;
  }, layer);
}

for (const [label, width, height] of [['desktop', 1280, 900], ['phone', 375, 800]]) {
  test(`map page on ${label} (${width} px)`, async () => {
    const page = await open('/map', width, height);
    try {
      // The canvas has an accessible name and is focusable; the navigation buttons are buttons.
      const canvas = page.locator('canvas.maplibregl-canvas');
      assert.match((await canvas.getAttribute('aria-label')) ?? '', /\S/);
      assert.equal(await page.locator('.maplibregl-ctrl-zoom-in').evaluate((b) => b.tagName), 'BUTTON');

      // The basemap: buildings in 3D and the districts.
      assert.ok((await rendered(page, 'buildings-3d')) > 0, 'buildings are drawn');
      assert.ok((await rendered(page, 'districts-fill')) > 0, 'districts are drawn');

      // On a phone the panel starts folded; its button opens it.
      const toggle = page.locator('.map-panel-toggle');
      if (label === 'phone') {
        assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
        assert.equal(await page.locator(`#layer-${LAYER}`).isVisible(), false);
        await toggle.focus();
        await page.keyboard.press('Enter');
        assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      }

      // A data layer on and off from the keyboard: drawn, in the URL; then hidden, out of the URL.
      const box = page.locator(`#layer-${LAYER}`);
      await box.focus();
      await page.keyboard.press('Space');
      await page.waitForFunction((l) => window.citydataMap.getLayer(`ds:${l}:point`), LAYER);
      await idle(page);
      assert.equal(await box.isChecked(), true);
      assert.ok((await rendered(page, `ds:${LAYER}:point`)) > 0, 'the layer draws points');
      assert.match(page.url(), new RegExp(`[?&]layers=${LAYER}(&|#|$)`));

      // A click on one of its points opens a popup whose table holds the point's properties.
      await canvas.scrollIntoViewIfNeeded();
      const target = await page.evaluate((l) => {
        const map = window.citydataMap;
        const c = map.getCanvas().getBoundingClientRect();
        const inside = (p) => p.x > 40 && p.y > 40 && p.x < c.width - 60 && p.y < c.height - 60;
        for (const f of map.queryRenderedFeatures({ layers: [`ds:${l}:point`] })) {
          const p = map.project(f.geometry.coordinates);
          if (inside(p)) return { x: c.left + p.x, y: c.top + p.y, id: String(f.properties.id) };
        }
        return null;
      }, LAYER);
      assert.ok(target, 'a point is on screen');
      await page.mouse.click(target.x, target.y);
      const popup = page.locator('.maplibregl-popup');
      await popup.waitFor();
      const cells = await popup.locator('table tbody tr').evaluateAll((rows) =>
        rows.map((r) => [r.querySelector('th[scope=row]')?.textContent, r.querySelector('td')?.textContent]),
      );
      assert.ok(cells.some(([k, v]) => k === 'id' && v === target.id), `the popup shows id ${target.id}`);
      await page.keyboard.press('Escape');
      await popup.waitFor({ state: 'detached' });

      // The same from the keyboard: the features in view are listed as buttons; one opens its popup,
      // Escape closes it and the focus comes back to the button.
      await page.locator('#list-here').focus();
      await page.keyboard.press('Enter');
      const listed = page.locator('#here-results button');
      assert.ok((await listed.count()) > 0, 'features in view are listed');
      assert.ok((await listed.count()) <= 20);
      await listed.first().focus();
      await page.keyboard.press('Enter');
      await popup.locator('table th[scope=row]').first().waitFor();
      await page.keyboard.press('Escape');
      await popup.waitFor({ state: 'detached' });
      assert.equal(await listed.first().evaluate((b) => b === document.activeElement), true);

      await box.focus();
      await page.keyboard.press('Space');
      assert.equal(await box.isChecked(), false);
      assert.equal(await page.evaluate((l) => window.citydataMap.getLayoutProperty(`ds:${l}:point`, 'visibility'), LAYER), 'none');
      await idle(page);
      assert.equal(await rendered(page, `ds:${LAYER}:point`), 0, 'the hidden layer draws nothing');
      assert.doesNotMatch(page.url(), /[?&]layers=/);

      // Fly to a district: the map ends over it and outlines it.
      const select = page.locator('#goto-district');
      await page.waitForFunction(() => !document.querySelector('#goto-district').disabled);
      assert.equal(await select.locator('option[value]:not([value=""])').count(), 18);
      await select.selectOption('D'); // Southern
      await page.locator('.map-form button[type=submit]').first().click();
      await page.waitForTimeout(100);
      await idle(page);
      const atSouthern = await page.evaluate(() => {
        const map = window.citydataMap;
        const drawn = map.queryRenderedFeatures({ layers: ['districts-fill'] }).map((f) => f.properties.DC_CODE);
        return { drawn, zoom: map.getZoom(), filter: JSON.stringify(map.getFilter('district-highlight')), center: map.getCenter().toArray() };
      });
      assert.ok(atSouthern.drawn.includes('D'), `Southern is drawn: ${atSouthern.drawn}`);
      // Southern (Hong Kong Island's south side and the islands off it) spans about 0.25° by 0.2°.
      const [lng, lat] = atSouthern.center;
      assert.ok(lng > 114.05 && lng < 114.3 && lat > 22.15 && lat < 22.3, `centred on Southern: ${atSouthern.center}`);
      assert.ok(atSouthern.zoom > 10, `zoomed in: ${atSouthern.zoom}`);
      assert.match(atSouthern.filter, /"D"/);

      // Find an address: the results are buttons; choosing one flies there and opens its popup.
      await page.locator('#goto-address').fill('Nathan Road');
      await page.locator('#goto-address').press('Enter');
      const first = page.locator('#place-results button').first();
      await first.waitFor();
      assert.ok((await page.locator('#place-results button').count()) <= 8);
      const address = (await first.textContent()) ?? '';
      assert.match(address, /Nathan Road/);
      await first.click();
      await page.locator('.maplibregl-popup table').waitFor({ timeout: 30_000 });
      const popupText = (await page.locator('.maplibregl-popup').textContent()) ?? '';
      assert.ok(popupText.includes(address), 'the popup is the chosen building');
      await idle(page);
      assert.ok((await rendered(page, 'buildings-3d')) > 0, 'buildings around the address are drawn');

      // The page as a whole: accessible, never wider than the screen, nothing went wrong.
      await expectAccessible(page, `map (${label})`);
      await expectNoHorizontalScroll(page, `map (${label})`);
      page.expectClean();
    } finally {
      await screenshot(page, `map-${label}`, label === 'phone').catch(() => {});
      await page.context().close();
    }
  });
}

test('?layers= chooses the layers and frames them; the language is the page\'s', async () => {
  const page = await open('/map?layers=hospitals,libraries&lang=zh-Hant', 1280, 900);
  try {
    assert.equal(await page.locator('#layer-hospitals').isChecked(), true);
    assert.equal(await page.locator('#layer-libraries').isChecked(), true);
    assert.equal(await page.locator('#layer-beaches').isChecked(), false);
    assert.ok((await rendered(page, 'ds:hospitals:point')) > 0);
    assert.ok((await rendered(page, 'ds:libraries:point')) > 0);
    assert.match(page.url(), /layers=hospitals,libraries/);
    // Names in the chosen language: the layer list, the districts, the map's own controls.
    const catalogue = await (await fetch(`${ctx.server.url}/api/v1/datasets/hospitals`)).json();
    assert.equal((await page.locator('label[for=layer-hospitals]').textContent())?.trim(), catalogue.title['zh-Hant']);
    await page.waitForFunction(() => !document.querySelector('#goto-district').disabled);
    assert.ok(await page.locator('#goto-district option', { hasText: '中西區' }).count());
    assert.equal(await page.locator('.maplibregl-ctrl-zoom-in').getAttribute('aria-label'), '放大');
    await expectAccessible(page, 'map (zh-Hant, layers)');
    page.expectClean();
  } finally {
    await screenshot(page, 'map-layers-zh');
    await page.context().close();
  }
});
