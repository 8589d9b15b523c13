// End-to-end tests of the web console: a real `tethys server` (fresh data directory, a
// free port on 127.0.0.1) and Debian's Chromium, headless, driven by playwright-core
// (from web/node_modules).  Run by tests/e2e/run.sh (make e2e), with node's test runner.
//
// Each test ends with a screenshot under build/e2e/screenshots/.  Every console message
// of the page and every Content-Security-Policy violation is collected; the last test
// fails if any CSP violation or page error happened anywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const BIN = process.env.TETHYS_BIN || path.join(ROOT, 'build/tethys');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'build/e2e/screenshots');

let server, data, base, token, browser, context, page;
const problems = []; // CSP violations and page errors, from every test
const consoleLines = [];

async function waitFor(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function api(method, p, body) {
  const res = await fetch(`${base}/api/v1${p}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'tethys-e2e-'));
  server = spawn(BIN, ['server', '--data', data, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  server.on('exit', (code) => {
    if (code !== 0 && code !== null) console.error(`tethys server exited ${code}:\n${log}`);
  });
  const info = await waitFor(() => {
    try {
      return JSON.parse(fs.readFileSync(path.join(data, 'server.json'), 'utf8'));
    } catch {
      return null;
    }
  }, 'server.json');
  base = info.url;
  token = fs.readFileSync(path.join(data, 'token'), 'utf8').trim();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'Asia/Shanghai' });
  page = await context.newPage();
  page.on('console', (m) => {
    consoleLines.push(`${m.type()}: ${m.text()}`);
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // a CSP violation also fires an event in the page: record it where the test can read it
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp = window.__csp || [];
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  fs.rmSync(data, { recursive: true, force: true });
});

async function cspViolations() {
  return page.evaluate(() => window.__csp || []);
}

const ADMIN_NEW_PASSWORD = 'e2e correct horse battery';

async function signInWithPassword(user, password) {
  await page.getByLabel('User name', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function sessionCookie() {
  return (await context.cookies(base)).find((c) => c.name === 'tethys_session') ?? null;
}

test('sign in as admin with the one-time password, change it, land on the overview', async () => {
  const oneTime = await waitFor(() => {
    try {
      return fs.readFileSync(path.join(data, 'initial-admin-password'), 'utf8').trim();
    } catch {
      return null;
    }
  }, 'DATA/initial-admin-password');
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot('00a-signin-page');
  await signInWithPassword('admin', oneTime);
  await page.getByRole('heading', { name: 'Change your password' }).waitFor();
  const cookie = await sessionCookie();
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  // the console checks the rules before asking: new equal to old, and a repeat that differs
  await page.getByLabel('Current password').fill(oneTime);
  await page.getByLabel('New password', { exact: true }).fill(oneTime);
  await page.getByLabel('Repeat the new password').fill(oneTime);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#password-error').filter({ hasText: 'must differ from the current one' }).waitFor();
  await page.getByLabel('New password', { exact: true }).fill(ADMIN_NEW_PASSWORD);
  await page.getByLabel('Repeat the new password').fill(ADMIN_NEW_PASSWORD + 'x');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#password-error').filter({ hasText: 'not the same' }).waitFor();
  await shot('00b-change-password');
  await page.getByLabel('Repeat the new password').fill(ADMIN_NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click(); // a cookie POST: needs X-CSRF-Token
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.equal(await page.locator('#signed-in-user').innerText(), 'admin');
  assert.ok(!fs.existsSync(path.join(data, 'initial-admin-password')), 'the one-time password file is removed');
  // a reload asks GET /api/v1/session and stays signed in
  await page.reload();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.equal(await page.locator('#signed-in-user').innerText(), 'admin');
  await page.waitForTimeout(300); // let the charts paint before the picture
  await shot('00c-password-changed-overview');
});

test('sign out ends the session on the server', async () => {
  const cookie = await sessionCookie();
  assert.ok(cookie, 'signed in with a cookie');
  await page.locator('#sign-out').click(); // DELETE /api/v1/session with X-CSRF-Token
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const res = await fetch(`${base}/api/v1/session`, { headers: { Cookie: `tethys_session=${cookie.value}` } });
  assert.equal(res.status, 401, 'the old session cookie is refused after signing out');
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot('00d-signed-out');
});

test('sign in with the new password', async () => {
  await signInWithPassword('admin', ADMIN_NEW_PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.equal(await page.locator('#signed-in-user').innerText(), 'admin');
  await shot('00e-signed-in-with-password');
  await page.locator('#sign-out').click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
});

test('a wrong password shows the error', async () => {
  await signInWithPassword('admin', 'not the password');
  const err = page.locator('#signin-error');
  await err.waitFor();
  assert.match(await err.innerText(), /Wrong user name or password\./);
  assert.match(await err.innerText(), /sign-in failed: wrong user name or password/);
  await shot('00f-wrong-password');
  // in Chinese too
  await page.locator('#lang').selectOption('zh');
  await page.getByText('用户名或密码错误。').waitFor();
  await page.locator('#lang').selectOption('en');
});

test('sign in with the API token', async () => {
  await page.goto(base + '/');
  await page.getByText('Sign in with an API token instead').click();
  await page.getByLabel('API token').fill('tethys_wrong');
  await page.getByRole('button', { name: 'Sign in with the token' }).click();
  await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in with the token' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).waitFor();
  assert.equal(await page.locator('#signed-in-user').innerText(), 'default'); // the bootstrap token's name
  await shot('01-signed-in');
});

test('create a job through the form with the live cron preview', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await page.getByRole('link', { name: 'New job' }).click();
  await page.getByRole('heading', { name: 'New job' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('e2e-hello');
  await page.getByLabel('Domain', { exact: true }).fill('bank/settlement');
  await page.getByLabel('Command').fill('echo hello from e2e shard $TETHYS_SHARD');
  const schedule = page.getByLabel('Schedule (cron expression; empty: no schedule)');
  // invalid: the caret under the bad field, and the server's message
  await schedule.fill('0 0 12 32 * ?');
  const invalid = page.locator('[data-cron="invalid"]');
  await invalid.waitFor();
  assert.match(await invalid.locator('pre.caret').innerText(), /0 0 12 32 \* \?\n {7}\^\^/);
  assert.match(await page.locator('[data-cron="message"]').innerText(), /day-of-month.*"32" is out of range 1-31/);
  await shot('02-cron-invalid');
  // valid: monthly at noon in New York; ten months always cross a daylight-saving change
  await page.getByLabel('Time zone').fill('America/New_York');
  await schedule.fill('0 0 12 1 * ?');
  await page.locator('[data-cron="valid"]').waitFor();
  await waitFor(async () => (await page.locator('#fire-times li').count()) === 10, 'ten fire times');
  assert.ok((await page.locator('[data-dst]').count()) >= 1, 'a daylight-saving change is marked');
  assert.match(await page.locator('#cron-preview').innerText(), /Quartz/);
  await shot('03-cron-valid');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Job e2e-hello' }).waitFor();
  const job = await api('GET', '/jobs/e2e-hello');
  assert.equal(job.schedule, '0 0 12 1 * ?');
  assert.equal(job.time_zone, 'America/New_York');
  assert.equal(job.domain, 'bank/settlement');
  await shot('04-job-saved');
});

test('run the job now and see its output on the job page', async () => {
  await page.locator('#run-now').click();
  await page.locator('#run-output').waitFor();
  await waitFor(async () => /hello from e2e shard 0/.test(await page.locator('#run-output').innerText()), 'the run output', 15000);
  await page.locator('#run-output .badge', { hasText: 'succeeded' }).waitFor();
  await page.locator('#history-table').getByText('succeeded').first().waitFor({ timeout: 10000 });
  await shot('05-run-output');
});

test('search and filter the jobs list', async () => {
  for (const [name, domain, level, description] of [
    ['billing-daily', 'billing', 2, 'Daily invoices'],
    ['billing-hourly', 'billing', 7, 'Hourly usage rollup'],
    ['reports-weekly', 'reports', 7, 'Weekly summary'],
  ])
    await api('POST', '/jobs', { name, domain, level, description, command: 'true', schedule: '0 0 * * * ?' });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  const rows = page.locator('#jobs-table tbody tr');
  await waitFor(async () => (await rows.count()) === 4, 'four jobs');
  await page.getByLabel('Search name or description').fill('hourly');
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor(async () => (await rows.count()) === 1, 'one match for "hourly"');
  assert.match(await rows.first().innerText(), /billing-hourly/);
  assert.match(page.url(), /q=hourly/);
  await page.getByLabel('Search name or description').fill('');
  await page.locator('#f-level').selectOption('7');
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor(async () => (await rows.count()) === 2, 'two jobs of level 7');
  await page.locator('#f-domain').fill('billing');
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor(async () => (await rows.count()) === 1, 'one job of level 7 in billing');
  assert.match(await rows.first().innerText(), /billing-hourly/);
  await shot('06-jobs-filtered');
});

test('switch to Chinese, and it stays Chinese after a reload', async () => {
  await page.locator('#lang').selectOption('zh');
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: '作业' }).waitFor();
  await page.getByRole('heading', { name: '作业' }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: '作业' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  await page.getByRole('navigation', { name: '主导航' }).getByRole('link', { name: '概览' }).click();
  await page.getByRole('heading', { name: '概览' }).waitFor();
  await page.getByText('每日运行（按 UTC 日期）').waitFor();
  await page.locator('#chart-day canvas').waitFor();
  await page.waitForTimeout(300); // let the charts paint before the picture
  await shot('07-chinese');
  await page.locator('#lang').selectOption('en');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
});

test('the overview shows charts with data', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await waitFor(async () => Number((await page.locator('[data-stat="runs"]').innerText()).replace(/\D/g, '')) >= 1, 'at least one run counted');
  for (const id of ['chart-day', 'chart-domain', 'chart-pct']) await page.locator(`#${id} canvas`).waitFor();
  assert.match(await page.locator('[data-stat="executors"]').innerText(), /1 \/ 1/);
  assert.match(await page.locator('table').first().innerText(), /bank\/settlement/);
  await page.waitForTimeout(300); // let the charts paint before the picture
  await shot('08-overview');
});

test('alerts and executors pages', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Executors' }).click();
  await page.locator('#executors-table tbody tr').first().waitFor();
  await shot('09-executors');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
  await page.getByRole('heading', { name: 'Abnormal jobs' }).waitFor();
  await shot('10-alerts');
});

test('a phone-sized screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(base + '/jobs/e2e-hello');
  await page.getByRole('heading', { name: 'Job e2e-hello' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone's screen`);
  await shot('11-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('domains: add a domain and a child through the page, see both in the tree, edit one', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Domains' }).click();
  await page.getByRole('heading', { name: 'Domains', exact: true }).waitFor();
  await page.locator('#domain-add').click();
  await page.locator('#d-path').fill('e2e-org');
  await page.locator('#d-level').fill('12');
  await page.locator('#d-max_jobs').fill('10');
  await page.getByRole('button', { name: 'Create domain' }).click();
  // the server refuses the level: the message is shown with the field it names
  await page.locator('[data-field-error="level"]').waitFor();
  assert.equal(await page.locator('#d-level').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#domain-error').innerText(), /level/);
  await shot('12-domain-field-error');
  await page.locator('#d-level').fill('4');
  await page.getByRole('button', { name: 'Create domain' }).click();
  await page.locator('#domains-table tr[data-domain="e2e-org"]').waitFor();
  // a child, from the parent's row: the path starts as "e2e-org/"
  await page.getByRole('button', { name: 'Add a child: e2e-org' }).click();
  assert.equal(await page.locator('#d-path').inputValue(), 'e2e-org/');
  await page.locator('#d-path').fill('e2e-org/payments');
  await page.locator('#d-max_shards').fill('8');
  await page.locator('#d-path').press('Enter'); // the keyboard submits the form
  const child = page.locator('#domains-table tr[data-domain="e2e-org/payments"]');
  await child.waitFor();
  const parent = page.locator('#domains-table tr[data-domain="e2e-org"]');
  assert.equal(await parent.getAttribute('data-depth'), '0');
  assert.equal(await child.getAttribute('data-depth'), '1');
  assert.match(await parent.innerText(), /\t4\t10\tno limit\tno limit\t/); // level 4, at most 10 jobs
  assert.match(await child.innerText(), /payments/);
  // the child comes right after its parent
  const order = await page.locator('#domains-table tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.domain));
  assert.equal(order[order.indexOf('e2e-org') + 1], 'e2e-org/payments');
  // edit: PUT with If-Match; the path cannot change (no move in the API, said on the page)
  await page.getByRole('button', { name: 'Edit e2e-org/payments' }).click();
  assert.equal(await page.locator('#d-path').isDisabled(), true);
  await page.locator('#d-description').fill('Card payments');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#domain-notice', { hasText: 'saved (version 2)' }).waitFor();
  const d = await api('GET', '/domains/e2e-org%2Fpayments');
  assert.equal(d.description, 'Card payments');
  assert.equal(d.limits.max_shards, 8);
  assert.match(await page.locator('#domain-move').innerText(), /no way to move or rename/);
  await shot('13-domains-tree');
});

test('job versions: the diff of previous and current, restore the first version', async () => {
  await api('POST', '/jobs', { name: 'e2e-versions', command: 'echo one', schedule: '0 0 3 * * ?' });
  await api('PUT', '/jobs/e2e-versions', { name: 'e2e-versions', command: 'echo two', schedule: '0 0 3 * * ?' });
  await api('PUT', '/jobs/e2e-versions', { name: 'e2e-versions', command: 'echo three', schedule: '0 0 3 * * ?' });
  await page.goto(base + '/jobs/e2e-versions');
  await page.getByRole('heading', { name: 'Job e2e-versions' }).waitFor();
  const rows = page.locator('#versions-table tbody tr');
  await waitFor(async () => (await rows.count()) === 3, 'three versions');
  assert.match(await rows.first().innerText(), /3\s*current\s+update/);
  // default: version 2 (left) against version 3 (right); the changed line is marked
  assert.equal(await page.locator('#v-old').inputValue(), '2');
  assert.equal(await page.locator('#v-new').inputValue(), '3');
  await page.locator('#version-diff [data-diff="del"]').first().waitFor();
  const marked = async (kind) => (await page.locator(`#version-diff [data-diff="${kind}"]`).allTextContents()).map((x) => x.replace(/\s+/g, ' '));
  assert.deepEqual(await marked('del'), ['removed: "command": "echo two",']);
  assert.deepEqual(await marked('add'), ['added: "command": "echo three",']);
  assert.match(await page.locator('#version-diff').innerText(), /1 lines removed, 1 lines added/);
  await page.locator('#version-diff').scrollIntoViewIfNeeded();
  await shot('14-versions-diff');
  // pick version 1 on the left
  await page.locator('#v-old').selectOption('1');
  await page.locator('#version-diff [data-diff="del"]', { hasText: 'echo one' }).waitFor();
  // restore version 1, with the confirm step (the keyboard can do it: the confirm button has the focus)
  await page.locator('button[data-restore="1"]').click();
  await page.locator('#restore-confirm').waitFor();
  assert.match(await page.locator('#restore-confirm').innerText(), /Restore version 1\?/);
  await shot('15-restore-confirm');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'restore-yes');
  await page.keyboard.press('Enter');
  await page.locator('#restore-result', { hasText: 'Version 1 restored; the job is now at version 4.' }).waitFor();
  await waitFor(async () => (await rows.count()) === 4, 'four versions');
  assert.match(await rows.first().innerText(), /4\s*current/);
  // the definition is back, on the page and on the server
  await waitFor(async () => /echo one/.test(await page.locator('.defs').innerText()), 'the restored command');
  const job = await api('GET', '/jobs/e2e-versions');
  assert.equal(job.command, 'echo one');
  assert.equal(job.version, 4);
  // and the default diff is now version 3 against the current version 4
  await waitFor(async () => (await page.locator('#v-new').inputValue()) === '4', 'the new current version in the diff');
  await page.locator('#version-diff [data-diff="add"]', { hasText: 'echo one' }).waitFor();
  await shot('16-restored');
});

test('no Content-Security-Policy violation or page error anywhere', async () => {
  const v = await cspViolations();
  assert.deepEqual([...problems, ...v], [], `console:\n${consoleLines.join('\n')}`);
});
