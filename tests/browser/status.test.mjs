// The status page at / as an on-call engineer sees it: Debian's headless Chromium opens it while
// the exporter watches a fresh backup (up), a stale one (over its threshold), a PostgreSQL port
// nobody listens on (down, libpq's reason), and a hostile "Redis" whose error text is HTML and
// script. Asserts the DOM (states, reasons, thresholds), that nothing from the hostile text
// became markup or ran, that the page refreshes itself, and saves a screenshot.
//
// Run: node --test tests/browser/   (or tests/browser/run.sh)
// Env: APPHEALTH_EXPORTER  exporter binary (default build/release/exporter/apphealth_exporter)
//      CHROMIUM            browser binary (default /usr/bin/chromium)
//      APPHEALTH_ARTIFACTS where the screenshot goes (default build/artifacts)
// Only 127.0.0.1 is used.

import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
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
const artifacts = path.resolve(repoRoot, process.env.APPHEALTH_ARTIFACTS || 'build/artifacts');

const HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

let tmpDir;
let exporter;
let fakeRedis;
let browser;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

function httpGet(url, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {agent: false, timeout: timeoutMs}, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({status: res.statusCode, body}));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

// Answers every command with a RESP error carrying HTML and script: what a compromised or
// misconfigured server could send back, and what the collector reports as its reason.
function startHostileRedis() {
  const server = net.createServer((socket) => {
    socket.on('data', () => socket.write(`-ERR ${HOSTILE}\r\n`));
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({server, port: server.address().port})));
}

function writeBackup(dir, ageSeconds) {
  fs.mkdirSync(dir, {recursive: true});
  const file = path.join(dir, 'db.sql.gz');
  fs.writeFileSync(file, 'dump\n');
  const t = new Date(Date.now() - ageSeconds * 1000);
  fs.utimesSync(file, t, t);
}

before(async () => {
  if (!fs.existsSync(exporterBinary)) throw new Error(`exporter binary not found: ${exporterBinary}`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'apphealth-status-'));
  writeBackup(path.join(tmpDir, 'fresh'), 60);
  writeBackup(path.join(tmpDir, 'stale'), 2 * 3600);
  fakeRedis = await startHostileRedis();
  const closedPort = await freePort();
  const configFile = path.join(tmpDir, 'apphealth.yml');
  fs.writeFileSync(configFile, [
    'backups:',
    `  - {name: nightly, directory: "${path.join(tmpDir, 'fresh')}", interval: 1s}`,
    `  - {name: stale, directory: "${path.join(tmpDir, 'stale')}", max_age: 1h, interval: 1s}`,
    'postgres:',
    `  - {name: orders-db, dsn: "host=127.0.0.1 port=${closedPort} dbname=app user=apphealth", interval: 1s, timeout: 1s}`,
    'redis:',
    `  - name: jobs`,
    `    address: 127.0.0.1:${fakeRedis.port}`,
    '    interval: 1s',
    '    timeout: 1s',
    '    queues: [{preset: celery, queues: [celery]}]',
    '',
  ].join('\n'));
  const port = await freePort();
  const child = spawn(exporterBinary, [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`],
                      {stdio: ['ignore', 'pipe', 'pipe']});
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = {code, signal}; });
  exporter = {child, port, output: () => output.slice(-4000), exited: () => exited};
  // Ready when every collector has reported once and the overall state is settled.
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`exporter exited (${JSON.stringify(exited)}):\n${output}`);
    try {
      const r = await httpGet(`http://127.0.0.1:${port}/api/v1/status`);
      const s = JSON.parse(r.body);
      if (s.collectors.length === 4 && s.collectors.every((c) => c.state !== 'pending')) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`collectors did not report within 20 s:\n${output}`);
    await sleep(200);
  }
  browser = await chromium.launch({
    executablePath: chromiumBinary,
    timeout: 20000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
}, {timeout: 40000});

after(async () => {
  try { if (browser) await browser.close(); } catch (e) { console.error('closing the browser:', e); }
  if (exporter && !exporter.exited()) {
    const gone = new Promise((r) => exporter.child.once('exit', r));
    exporter.child.kill('SIGTERM');
    const timer = setTimeout(() => exporter.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
  if (fakeRedis) fakeRedis.server.close();
  if (tmpDir) fs.rmSync(tmpDir, {recursive: true, force: true});
});

test('status page: states, reasons and thresholds; hostile text stays text; refreshes itself', {timeout: 40000}, async (t) => {
  const page = await browser.newPage({viewport: {width: 1280, height: 800}});
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const response = await page.goto(`http://127.0.0.1:${exporter.port}/`, {waitUntil: 'load'});
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'], /^default-src 'none';/);

  assert.equal(await page.textContent('#overall'), 'unhealthy');
  const row = (target) => page.locator(`tr.collector[data-target="${target}"]`);
  assert.equal(await row('nightly').getAttribute('data-state'), 'up');
  assert.match(await row('nightly').locator('.last-success').textContent(), /ago$/);
  assert.equal(await row('stale').getAttribute('data-state'), 'warning');
  assert.match(await row('stale').locator('li.over').textContent(), /^age of the newest backup: 2 h 0 min over 1 h 0 min$/);
  assert.equal(await row('orders-db').getAttribute('data-state'), 'down');
  assert.match(await row('orders-db').locator('.problem').textContent(), /Connection refused/);
  assert.equal(await row('jobs').getAttribute('data-state'), 'down');
  const reasons = await page.locator('#reasons li').allTextContents();
  assert.ok(reasons.some((r) => /^postgres orders-db is down: .*Connection refused/s.test(r)), reasons.join('\n'));
  assert.ok(reasons.some((r) => r.startsWith('backup stale: age of the newest backup')), reasons.join('\n'));

  // The hostile reply is shown as the text it is; none of it became an element or ran.
  assert.ok((await row('jobs').locator('.problem').textContent()).includes(HOSTILE));
  assert.equal(await page.locator('script').count(), 0);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(dialogs, []);
  assert.ok(requests.every((u) => u.startsWith(`http://127.0.0.1:${exporter.port}/`)), requests.join('\n'));

  fs.mkdirSync(artifacts, {recursive: true});
  const shot = path.join(artifacts, 'status-page.png');
  await page.screenshot({path: shot, fullPage: true});
  assert.ok(fs.statSync(shot).size > 10000, 'screenshot is not empty');
  t.diagnostic(`screenshot: ${shot}`);

  // The page reloads itself (meta refresh) and shows the new state: the stale backup is
  // replaced by a fresh one meanwhile.
  writeBackup(path.join(tmpDir, 'stale'), 30);
  let state;
  for (let refresh = 0; refresh < 3 && state !== 'up'; ++refresh) {
    await page.waitForEvent('load', {timeout: 20000});
    state = await row('stale').getAttribute('data-state');
  }
  assert.equal(state, 'up', 'the refreshed page shows the replaced backup as up');
  await page.close();
});
