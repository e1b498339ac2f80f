// A real client end to end: headless Chromium (Debian's) loads a demo page that runs the real
// `web-vitals` library from npm and beacons its metrics cross-origin to the exporter's
// /ingest/vitals; a thrown error goes to /ingest/errors. Then /metrics must show LCP, FCP,
// TTFB, CLS and INP for route="/tutors/:id" with the device the browser's User-Agent claims
// (desktop, then iPhone), the page view, and the error.
//
// Run: node --test tests/browser/   (or tests/browser/run.sh, which installs what is missing)
// Env: APPHEALTH_EXPORTER  exporter binary (default build/release/exporter/apphealth_exporter)
//      CHROMIUM            browser binary (default /usr/bin/chromium)
// Only 127.0.0.1 is used: the exporter, the page server and the browser's requests.

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const exporterBinary = path.resolve(repoRoot, process.env.APPHEALTH_EXPORTER || 'build/release/exporter/apphealth_exporter');
const chromiumBinary = process.env.CHROMIUM || '/usr/bin/chromium';
const webVitalsFile = path.join(here, 'node_modules', 'web-vitals', 'dist', 'web-vitals.js');

const ROUTE = '/tutors/:id';
const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';

let tmpDir;
let exporter;        // {child, port, output()}
let pageServer;      // {server, port, requests}
const browsers = new Set();  // open browsers, closed by their test or, failing that, by after()

// ---------------------------------------------------------------------------------------------
// helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A fresh connection per request (agent: false): reusing an idle keep-alive connection races
// with the server closing it, which shows up as a rare ECONNRESET under load.
function httpGet(url, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {agent: false, timeout: timeoutMs}, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({status: res.statusCode, body}));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

// Prometheus text format → [{name, labels, value}]
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({name: m[1], labels, value: Number(m[3])});
  }
  return samples;
}

// Sum of the samples called `name` whose labels include `want`.
function sum(samples, name, want = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((acc, s) => acc + s.value, 0);
}

async function scrape() {
  let lastError;
  for (let attempt = 0; attempt < 3; ++attempt) {
    try {
      const {status, body} = await httpGet(`http://127.0.0.1:${exporter.port}/metrics`);
      assert.equal(status, 200, 'GET /metrics');
      return {text: body, samples: parseMetrics(body)};
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      lastError = e;
      if (exporter.exited()) break;
      await sleep(200);
    }
  }
  throw new Error(`GET /metrics failed: ${lastError?.message} (exporter ${exporter.exited() ? 'exited ' +
                  JSON.stringify(exporter.exited()) : 'still running'})\n${exporter.output()}`);
}

// Polls /metrics until check(samples) returns no missing items, or fails listing them.
async function waitForMetrics(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await scrape();
    const missing = check(last.samples);
    if (missing.length === 0) return last.samples;
    if (Date.now() > deadline) {
      const relevant = last.text.split('\n').filter((l) => /^apphealth_(web_vitals|client_errors|ingest)/.test(l));
      assert.fail(`${what}: still missing after ${timeoutMs} ms:\n  ${missing.join('\n  ')}\n` +
                  `page server saw: ${pageServer.requests.join(', ')}\n` +
                  `ingest series on /metrics:\n${relevant.filter((l) => !l.includes('_bucket')).join('\n')}\n` +
                  `exporter output:\n${exporter.output()}`);
    }
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// the three processes

async function startExporter(pageOrigin) {
  if (!fs.existsSync(exporterBinary)) {
    throw new Error(`exporter binary not found: ${exporterBinary}\n` +
                    'Build it (see README) or point APPHEALTH_EXPORTER at one, e.g.\n' +
                    '  APPHEALTH_EXPORTER=build/exporter/apphealth_exporter node --test tests/browser/');
  }
  const configFile = path.join(tmpDir, 'apphealth.yml');
  const ingestPort = await freePort();  // the beacon endpoints' own listener, as deployed
  fs.writeFileSync(configFile, [
    'ingest:',
    `  listen_address: "127.0.0.1:${ingestPort}"`,
    `  allowed_origins: ["${pageOrigin}"]`,
    `  routes: ["${ROUTE}"]`,
    '  rate_per_second: 100',
    '  burst: 100',
    '',
  ].join('\n'));
  try {
    execFileSync(exporterBinary, [`--config.file=${configFile}`, '--check-config'], {stdio: 'pipe'});
  } catch (e) {
    throw new Error(`${exporterBinary} rejects the test's ingest config (a build without the ingest ` +
                    `endpoints?):\n${e.stdout}${e.stderr}`);
  }
  const port = await freePort();
  const child = spawn(exporterBinary, [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`],
                      {stdio: ['ignore', 'pipe', 'pipe']});
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = {code, signal}; });
  exporter = {child, port, ingestPort, output: () => output.slice(-4000), exited: () => exited};

  const deadline = Date.now() + 10000;
  for (;;) {
    if (exited) throw new Error(`exporter exited (${JSON.stringify(exited)}) during startup:\n${output}`);
    try {
      if ((await httpGet(`http://127.0.0.1:${port}/metrics`)).status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`exporter did not answer /metrics within 10 s:\n${output}`);
    await sleep(100);
  }
}

async function stopExporter() {
  if (!exporter || exporter.exited()) return;
  const {child} = exporter;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

// Serves the demo page under /tutors/<id> (so the route pattern maps it), the snippet, and the
// web-vitals ESM build straight from node_modules. Nothing else, no proxying.
function startPageServer(ingestOriginPromise) {
  const requests = [];
  const html = fs.readFileSync(path.join(here, 'demo', 'index.html'), 'utf8');
  const files = {
    '/demo/vitals.js': path.join(here, 'demo', 'vitals.js'),
    '/vendor/web-vitals.js': webVitalsFile,
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (/^\/tutors\/[^/]+$/.test(url.pathname)) {
      const ingestOrigin = await ingestOriginPromise;
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store'});
      res.end(html.replace('{{INGEST_ORIGIN}}', ingestOrigin));
    } else if (files[url.pathname]) {
      res.writeHead(200, {'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store'});
      res.end(fs.readFileSync(files[url.pathname]));
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, {'Content-Type': 'text/plain'}).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({server, port: server.address().port, requests}));
  });
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  if (!fs.existsSync(webVitalsFile)) throw new Error(`${webVitalsFile} missing: run npm ci in tests/browser`);
  if (!fs.existsSync(chromiumBinary)) throw new Error(`${chromiumBinary} missing: apt-get install -y chromium`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'apphealth-browser-'));

  // The page's origin must be known before the exporter's config is written, and the page
  // needs the exporter's origin: the page server waits for it when serving HTML.
  let setIngestOrigin;
  const ingestOrigin = new Promise((r) => { setIngestOrigin = r; });
  pageServer = await startPageServer(ingestOrigin);
  await startExporter(`http://127.0.0.1:${pageServer.port}`);
  setIngestOrigin(`http://127.0.0.1:${exporter.ingestPort}`);
}, {timeout: 20000});

after(async () => {
  // Each step on its own: one failing must not leave the others running.
  for (const b of browsers) {
    try { await b.close(); } catch (e) { console.error('closing a browser:', e); }
  }
  try { await stopExporter(); } catch (e) { console.error('stopping the exporter:', e); }
  try {
    if (pageServer) {
      pageServer.server.closeAllConnections();
      await new Promise((r) => pageServer.server.close(r));
    }
  } catch (e) { console.error('stopping the page server:', e); }
  if (tmpDir) fs.rmSync(tmpDir, {recursive: true, force: true});
});

// The User-Agent is the browser's own (--user-agent), not a per-context override: Chromium
// sends keepalive requests made while a page unloads (sendBeacon from visibilitychange, fetch
// keepalive) from the browser process without the DevTools override, so with
// newContext({userAgent}) the flushed beacon would carry HeadlessChrome's desktop UA.
async function launchBrowser(userAgent) {
  const b = await chromium.launch({
    executablePath: chromiumBinary,
    timeout: 20000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
           `--user-agent=${userAgent}`,
           // Belt and braces: no host name resolves, so nothing can leave the machine.
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  browsers.add(b);
  return b;
}

async function closeBrowser(b) {
  browsers.delete(b);
  await b.close();
}

// One page view the way a user makes it: load, wait for the late banner (layout shift), click
// the slow button (INP; also ends LCP observation), click the throwing button, navigate away
// (visibilitychange → hidden → the queued metrics leave in one sendBeacon).
async function visit(userAgent, contextOptions, pagePath) {
  const browser = await launchBrowser(userAgent);
  try {
    await visitWith(browser, contextOptions, pagePath);
  } finally {
    await closeBrowser(browser);
  }
}

async function visitWith(browser, contextOptions, pagePath) {
  const context = await browser.newContext(contextOptions);
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const response = await page.goto(`http://127.0.0.1:${pageServer.port}${pagePath}`, {waitUntil: 'load'});
    assert.equal(response.status(), 200);
    await page.waitForSelector('#promo');  // the banner is in: the layout shift happened
    await page.waitForTimeout(300);        // let the LCP/CLS observers see the frames
    await page.click('#busy');
    await page.waitForSelector('#status:has-text("booked")');
    await page.click('#boom');
    await page.waitForTimeout(100);
    assert.ok(pageErrors.some((m) => m.includes('demo failure')), `the thrown error was not seen: ${pageErrors}`);
    // A real navigation: the old document becomes hidden and the batching recipe flushes.
    await page.goto('about:blank');
  } finally {
    await context.close();
  }
}

function vitalsMissing(samples, device) {
  const missing = [];
  const labels = {route: ROUTE, device};
  for (const family of ['lcp_seconds', 'fcp_seconds', 'ttfb_seconds', 'inp_seconds', 'cls']) {
    const name = `apphealth_web_vitals_${family}_count`;
    if (sum(samples, name, labels) < 1) missing.push(`${name}{route="${ROUTE}",device="${device}"} >= 1`);
  }
  if (sum(samples, 'apphealth_web_vitals_page_views_total', labels) < 1) {
    missing.push(`apphealth_web_vitals_page_views_total{route="${ROUTE}",device="${device}"} >= 1`);
  }
  return missing;
}

const globalErrors = (samples) =>
  sum(samples, 'apphealth_client_errors_total', {route: ROUTE, level: 'global', severity: 'error'});

function errorsMissing(samples, atLeast) {
  const n = globalErrors(samples);
  return n >= atLeast ? [] : [`apphealth_client_errors_total{route="${ROUTE}",level="global",severity="error"} >= ${atLeast} (is ${n})`];
}

function assertValues(samples, device) {
  const labels = {route: ROUTE, device};
  const v = (family, part) => sum(samples, `apphealth_web_vitals_${family}_${part}`, labels);
  // One page view, one observation per vital: the library reports each once without
  // reportAllChanges, and the exporter counts one view per pageViewId.
  assert.equal(sum(samples, 'apphealth_web_vitals_page_views_total', labels), 1, 'page views');
  for (const family of ['lcp_seconds', 'fcp_seconds', 'ttfb_seconds', 'inp_seconds', 'cls']) {
    assert.equal(v(family, 'count'), 1, `${family} observations for device=${device}`);
  }
  // Milliseconds became seconds: the ~100 ms click handler is an INP of about 0.1 s, not 100.
  assert.ok(v('inp_seconds', 'sum') >= 0.08 && v('inp_seconds', 'sum') < 5, `INP ${v('inp_seconds', 'sum')} s`);
  assert.ok(v('lcp_seconds', 'sum') > 0 && v('lcp_seconds', 'sum') < 30, `LCP ${v('lcp_seconds', 'sum')} s`);
  assert.ok(v('fcp_seconds', 'sum') > 0 && v('fcp_seconds', 'sum') <= v('lcp_seconds', 'sum') + 1e-9,
            `FCP ${v('fcp_seconds', 'sum')} s <= LCP`);
  assert.ok(v('ttfb_seconds', 'sum') >= 0 && v('ttfb_seconds', 'sum') < 5, `TTFB ${v('ttfb_seconds', 'sum')} s`);
  assert.ok(v('cls', 'sum') > 0 && v('cls', 'sum') < 5, `CLS ${v('cls', 'sum')} (the late banner shifts the page)`);
  // Nothing the real library sent was refused.
  assert.equal(sum(samples, 'apphealth_ingest_rejected_total'), 0, 'rejected ingest entries');
  assert.equal(sum(samples, 'apphealth_web_vitals_page_views_total', {route: 'other'}), 0, 'views on route="other"');
  const r = (x) => Math.round(x * 1000) / 1000;
  return `device=${device}: LCP ${r(v('lcp_seconds', 'sum'))} s, FCP ${r(v('fcp_seconds', 'sum'))} s, ` +
         `TTFB ${r(v('ttfb_seconds', 'sum'))} s, INP ${r(v('inp_seconds', 'sum'))} s, CLS ${r(v('cls', 'sum'))}`;
}

test('desktop Chromium: web-vitals beacons and a thrown error reach /metrics', {timeout: 25000}, async (t) => {
  const errorsBefore = globalErrors((await scrape()).samples);
  await visit(DESKTOP_UA, {viewport: {width: 1280, height: 800}}, '/tutors/42');
  const samples = await waitForMetrics((s) => [...vitalsMissing(s, 'desktop'), ...errorsMissing(s, errorsBefore + 1)],
                                       'desktop visit');
  t.diagnostic(assertValues(samples, 'desktop'));
  assert.ok(sum(samples, 'apphealth_ingest_requests_total', {endpoint: 'vitals', code: '204'}) >= 1);
  assert.ok(sum(samples, 'apphealth_ingest_requests_total', {endpoint: 'errors', code: '204'}) >= 1);
  assert.ok(pageServer.requests.includes('GET /vendor/web-vitals.js'), 'the page loaded web-vitals');
});

test('iPhone-like context: the same visit is labelled device="mobile"', {timeout: 25000}, async (t) => {
  const errorsBefore = globalErrors((await scrape()).samples);
  const viewsBefore = sum((await scrape()).samples, 'apphealth_web_vitals_page_views_total', {route: ROUTE});
  await visit(IPHONE_UA, {
    viewport: {width: 390, height: 844},
    deviceScaleFactor: 3,
    isMobile: true,
    hasTouch: true,
  }, '/tutors/7');
  const samples = await waitForMetrics((s) => [...vitalsMissing(s, 'mobile'), ...errorsMissing(s, errorsBefore + 1)],
                                       'mobile visit');
  t.diagnostic(assertValues(samples, 'mobile'));
  // Exactly one more view on the route: the mobile visit did not land on device="desktop".
  assert.equal(sum(samples, 'apphealth_web_vitals_page_views_total', {route: ROUTE}), viewsBefore + 1, 'page views');
});
