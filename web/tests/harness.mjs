// What the browser tests share: a real citydata server on a free port (its own database, loaded
// with the built-in Hong Kong demo), Debian's Chromium driven by playwright-core, and checks that
// every test applies: no script error, no console error, no request leaving the server's origin,
// no serious or critical axe-core violation. Screenshots go to web/test-results/screenshots/.
//
// The server binary is $CITYDATA_BIN, else target/debug/citydata of this checkout; the browser is
// $CHROMIUM, else /usr/bin/chromium.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
export const SHOTS = join(root, 'web/test-results/screenshots');

/** A free TCP port on loopback. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `citydata serve` on a new database in a temporary directory and waits until it answers.
 * `simulate: false` passes --no-simulate (no live readings). Returns { url, stop }.
 */
export async function startServer({ simulate = false } = {}) {
  const bin = process.env.CITYDATA_BIN ?? join(root, 'target/debug/citydata');
  if (!existsSync(bin)) throw new Error(`no citydata binary at ${bin}: build it (cargo build -p citydata) or set CITYDATA_BIN`);
  const dir = mkdtempSync(join(tmpdir(), 'citydata-web-'));
  const port = await freePort();
  const args = ['serve', '--db', join(dir, 'citydata.db'), '--port', String(port), '--host', '127.0.0.1'];
  if (!simulate) args.push('--no-simulate');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`citydata exited (${child.exitCode}):\n${log}`);
    try {
      const res = await fetch(`${url}/api/v1/status`);
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`citydata did not answer within 120 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Registers a test file's hooks: one server (`options` as for startServer) and one browser for all
 * its tests, `setUp(ctx)` run once both are up, both stopped at the end. Returns the context whose
 * `server` and `browser` the tests use.
 */
export function serverAndBrowser(options = {}, setUp = async () => {}) {
  const ctx = { server: null, browser: null };
  before(async () => {
    ctx.server = await startServer(options);
    ctx.browser = await launchBrowser();
    await setUp(ctx);
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.stop();
  });
  return ctx;
}

/** Launches headless Chromium with software WebGL and no background traffic. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--use-gl=swiftshader',
      '--enable-unsafe-swiftshader',
      '--ignore-gpu-blocklist',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * A new page at `width` x `height` that records problems: script errors, console errors and any
 * request to another origin (which is refused). `problems()` lists them; `expectClean()` throws
 * when there is one.
 */
export async function openPage(browser, server, { width = 1280, height = 900, locale = 'en-GB' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale });
  const page = await context.newPage();
  const problems = [];
  const origin = new URL(server.url).origin;
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('data:') || u.startsWith('blob:') || new URL(u).origin === origin) return route.continue();
    problems.push(`off-site request: ${u}`);
    return route.abort();
  });
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.problems = () => problems;
  page.expectClean = () => {
    if (problems.length) throw new Error(`the page had problems:\n${problems.join('\n')}`);
  };
  page.goHere = (path) => page.goto(server.url + path, { waitUntil: 'load' });
  return page;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page and throws listing every serious or
 * critical violation. Returns all violations for the caller to look at.
 */
export async function expectAccessible(page, label) {
  // Through the DevTools protocol: the pages' Content Security Policy refuses inline scripts.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    const text = bad
      .map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.slice(0, 5).map((n) => `  ${n.target.join(' ')}: ${n.failureSummary}`).join('\n')}`)
      .join('\n');
    throw new Error(`axe-core on ${label}: ${bad.length} serious/critical violation(s)\n${text}`);
  }
  return result.violations;
}

/** Throws when the page scrolls sideways (wider content than its viewport). */
export async function expectNoHorizontalScroll(page, label) {
  const { scroll, view, culprits } = await page.evaluate(() => {
    const view = document.documentElement.clientWidth;
    const culprits = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > view + 1 && !el.closest('.table-wrap, pre, .maplibregl-map'))
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
    return { scroll: document.documentElement.scrollWidth, view, culprits };
  });
  if (scroll > view) throw new Error(`${label} scrolls sideways: ${scroll} px of content in ${view} px (${culprits.join(', ')})`);
}

/** Saves a screenshot of the page under web/test-results/screenshots/NAME.png. */
export async function screenshot(page, name, fullPage = false) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** Waits until `fn` (run in the page) returns truthy, up to `ms`. */
export function waitFor(page, fn, arg, ms = 15_000) {
  return page.waitForFunction(fn, arg, { timeout: ms });
}
