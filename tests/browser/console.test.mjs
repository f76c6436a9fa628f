// The admin console (/admin/), used as a person would: in Debian's Chromium, driven by
// playwright-core, against the running gateway of tests/support/servers.sh (GATEWAY_URL, an admin
// key from the configuration in GATEWAY_ADMIN_KEY). Every page is screenshotted into
// tests/browser/artifacts/; with UPDATE_SCREENSHOTS=1 the main pages are also written to
// docs/console/ for the README (bash tests/browser/screenshots.sh).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const GATEWAY_URL = (process.env.GATEWAY_URL || '').replace(/\/+$/, '');
const ADMIN_KEY = process.env.GATEWAY_ADMIN_KEY || '';
const CLIENT_KEY = process.env.GATEWAY_KEY || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = join(HERE, 'artifacts', 'console');
const README_SHOTS = process.env.UPDATE_SCREENSHOTS ? join(HERE, '..', '..', 'docs', 'console') : null;
const TIMEOUT_MS = 30_000;
// Names made unique per run, so the suite can run again against the same database.
const RUN = Date.now().toString(36);

if (!GATEWAY_URL || !ADMIN_KEY || !CLIENT_KEY) {
    throw new Error('GATEWAY_URL, GATEWAY_KEY and GATEWAY_ADMIN_KEY must be set (source tests/support/servers.sh)');
}
mkdirSync(ARTIFACTS, { recursive: true });
if (README_SHOTS) mkdirSync(README_SHOTS, { recursive: true });

let browser;
let context;
let page;
const pageErrors = [];
let createdKey = '';
const keyName = `browser-${RUN}`;
const userKeyName = `carol-key-${RUN}`;
const userName = `carol-${RUN}`;

before(async () => {
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-dev-shm-usage',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
        ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    context.setDefaultTimeout(TIMEOUT_MS);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: GATEWAY_URL });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
});

after(async () => {
    await browser?.close();
});

/** Save a screenshot (and, for the README, a copy of the main pages). */
async function screenshot(name, { readme = false, target = page } = {}) {
    await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: !readme });
    if (readme && README_SHOTS) {
        await target.screenshot({ path: join(README_SHOTS, `${name}.png`) });
    }
}

/** The admin API, with the admin key as a bearer (to set up what the console is tested on). */
async function adminApi(method, path, body) {
    const response = await fetch(`${GATEWAY_URL}${path}`, {
        method,
        headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** One chat completion with `key`: { status, body }. */
async function chat(key, model = 'llama3.2') {
    const response = await fetch(`${GATEWAY_URL}/v1/chat/completions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Why is the sky blue?' }] }),
    });
    return { status: response.status, body: await response.json() };
}

async function login(key) {
    await page.goto(`${GATEWAY_URL}/admin/`);
    await page.locator('#login-key').fill(key);
    await page.locator('button[type=submit]:has-text("Log in")').click();
    await page.waitForLoadState('domcontentloaded');
}

function keyRow(name) {
    return page.locator(`tr[data-key="${name}"]`);
}

test('the console asks for a login and refuses a wrong key, next to the field', async () => {
    const response = await page.goto(`${GATEWAY_URL}/admin/keys`);
    assert.equal(new URL(page.url()).pathname, '/admin/login', 'sent to the login page');
    assert.equal(response.status(), 200);
    await screenshot('01-login', { readme: false });
    await login('sk-not-a-key');
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    const error = page.locator('#login-key-error');
    await error.waitFor();
    assert.match(await error.innerText(), /invalid API key/);
    assert.equal(await page.locator('#login-key').getAttribute('aria-invalid'), 'true');
    assert.equal((await context.cookies()).filter((c) => c.name === 'og_session').length, 0, 'no session cookie');
    await screenshot('02-login-wrong-key');
});

test('a user-role key cannot log in (nor a configured key without admin)', async () => {
    const made = await adminApi('POST', '/admin/api/keys', { name: userKeyName, user: userName });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const users = await adminApi('GET', '/admin/api/users');
    assert.equal(users.body.data.find((u) => u.name === userName).role, 'user');
    for (const key of [made.body.key, CLIENT_KEY]) {
        await login(key);
        assert.equal(new URL(page.url()).pathname, '/admin/login');
        assert.match(await page.locator('#login-key-error').innerText(), /not an admin key/);
        assert.equal((await context.cookies()).filter((c) => c.name === 'og_session').length, 0);
    }
    await screenshot('03-login-user-key');
});

test('an admin key logs in: an HttpOnly, SameSite=Strict session cookie, the Keys page', async () => {
    await login(ADMIN_KEY);
    assert.equal(new URL(page.url()).pathname, '/admin/keys');
    const cookie = (await context.cookies()).find((c) => c.name === 'og_session');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/admin');
    assert.ok(cookie.expires > Date.now() / 1000, 'it expires');
    assert.equal(await page.evaluate(() => document.cookie.includes('og_session')), false, 'not readable by scripts');
    await page.locator('h1:has-text("Keys")').waitFor();
    // Configured keys are listed read-only.
    const config = keyRow('console-admin');
    await config.waitFor();
    assert.match(await config.innerText(), /config/);
    assert.match(await config.innerText(), /read-only/);
});

test('create a key: shown once with a copy button and snippets, never again', async () => {
    await page.locator('#create summary').click();
    await page.locator('#create-name').fill('bad name!');
    await page.locator('#create-rate_limit').fill('lots');
    await page.locator('button:has-text("Create key")').click();
    // Errors next to the fields they concern; the form keeps what was typed.
    await page.locator('#create-rate_limit-error').waitFor();
    assert.match(await page.locator('#create-rate_limit-error').innerText(), /whole number/);
    await screenshot('04-keys-form-errors');
    await page.locator('#create-rate_limit').fill('');
    await page.locator('button:has-text("Create key")').click();
    await page.locator('#create-name-error').waitFor();
    assert.match(await page.locator('#create-name-error').innerText(), /letters, digits/);

    await page.locator('#create-name').fill(keyName);
    await page.locator('#create-user').fill(`dana-${RUN}`);
    await page.locator('#create-models').fill('llama3.2, fail-*');
    await page.locator('#create-daily_token_quota').fill('100000');
    await page.locator('button:has-text("Create key")').click();
    const shown = page.locator('#new-key');
    await shown.waitFor();
    createdKey = (await shown.innerText()).trim();
    assert.match(createdKey, /^og_[0-9A-Za-z]{49}$/);
    assert.match(await page.locator('#snippet-curl').innerText(), new RegExp(`Authorization: Bearer ${createdKey}`));
    assert.match(await page.locator('#snippet-python').innerText(), /OpenAI\(base_url=/);
    await page.locator('button[data-copy="#new-key"]').click();
    await page.locator('button[data-copy="#new-key"]:has-text("Copied")').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), createdKey, 'the copy button copies the key');
    await screenshot('05-key-created', { readme: true });

    await page.goto(`${GATEWAY_URL}/admin/keys`);
    await keyRow(keyName).waitFor();
    assert.equal((await page.content()).includes(createdKey), false, 'the key is not shown again');
    assert.match(await keyRow(keyName).innerText(), /enabled/);
});

test('the new key works against the gateway, and its tokens show on Usage and in the CSV', async () => {
    const answered = await chat(createdKey);
    assert.equal(answered.status, 200, JSON.stringify(answered.body));
    const tokens = answered.body.usage.total_tokens;
    assert.ok(tokens > 0);
    // Some traffic from other keys too, so the charts have more than one series.
    for (let i = 0; i < 3; i++) assert.equal((await chat(CLIENT_KEY)).status, 200);
    assert.equal((await chat(ADMIN_KEY)).status, 200);
    const deadline = Date.now() + 15_000;
    let cell = '';
    for (;;) {
        await page.goto(`${GATEWAY_URL}/admin/usage?range=hour`);
        const row = page.locator('table.top').first().locator('tr', { hasText: keyName });
        if ((await row.count()) > 0) {
            cell = await row.locator('td').nth(4).innerText();
            if (Number(cell.replace(/,/g, '')) >= tokens) break;
        }
        assert.ok(Date.now() < deadline, `the key's tokens did not reach the Usage page (last: ${cell})`);
        await page.waitForTimeout(500);
    }
    assert.equal(Number(cell.replace(/,/g, '')), tokens, 'its tokens on the Usage page');
    await page.locator('svg.bars').first().waitFor();
    await screenshot('06-usage-hour');
    await page.goto(`${GATEWAY_URL}/admin/usage?range=day`);
    await page.locator('table.top').first().locator('tr', { hasText: keyName }).waitFor();
    await screenshot('07-usage', { readme: true });

    const csv = await context.request.get(`${GATEWAY_URL}/admin/usage.csv?range=hour&by=key`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()['content-type'], /text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    const header = lines[0].split(',');
    assert.deepEqual(header.slice(0, 4), ['from', 'to', 'key_id', 'key']);
    const total = lines
        .slice(1)
        .map((l) => l.split(','))
        .filter((cells) => cells[header.indexOf('key')] === keyName)
        .reduce((sum, cells) => sum + Number(cells[header.indexOf('total_tokens')]), 0);
    assert.equal(total, tokens, 'its tokens in the CSV');

    // The dark scheme, by the system setting.
    const dark = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'dark' });
    await dark.addCookies(await context.cookies());
    const darkPage = await dark.newPage();
    await darkPage.goto(`${GATEWAY_URL}/admin/usage?range=day&by=model`);
    const background = await darkPage.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(background, 'rgb(246, 247, 251)', 'dark background in the dark scheme');
    await screenshot('08-usage-dark', { readme: true, target: darkPage });
    await dark.close();
});

test('disable the key: the next request gets 401; enable, edit, then revoke it after a confirmation', async () => {
    await page.goto(`${GATEWAY_URL}/admin/keys`);
    await keyRow(keyName).locator('button:has-text("Disable")').click();
    await page.locator('.notice:has-text("disabled")').waitFor();
    assert.match(await keyRow(keyName).innerText(), /disabled/);
    const refused = await chat(createdKey);
    assert.equal(refused.status, 401);
    assert.match(refused.body.error.message, /disabled/);
    await screenshot('09-key-disabled');

    await keyRow(keyName).locator('button:has-text("Enable")').click();
    await page.locator('.notice:has-text("enabled")').waitFor();
    assert.equal((await chat(createdKey)).status, 200, 'enabled again');

    await keyRow(keyName).locator('a:has-text("Edit")').click();
    await page.locator('#edit-max_concurrent').fill('x');
    await page.locator('button:has-text("Save changes")').click();
    await page.locator('#edit-max_concurrent-error').waitFor();
    await page.locator('#edit-max_concurrent').fill('3');
    await page.locator('#edit-monthly_token_quota').fill('2000000');
    await page.locator('#edit-expires').fill('2030-01-01T00:00');
    await screenshot('10-key-edit');
    await page.locator('button:has-text("Save changes")').click();
    await page.locator('.notice:has-text("saved")').waitFor();
    const listed = (await adminApi('GET', '/admin/api/keys')).body.data.find((k) => k.name === keyName);
    assert.equal(listed.settings.max_concurrent, 3);
    assert.equal(listed.settings.monthly_token_quota, 2000000);
    assert.equal(listed.expires, '2030-01-01T00:00:00Z');

    await keyRow(keyName).locator('a:has-text("Revoke")').click();
    await page.locator('h1:has-text("Revoke key")').waitFor();
    await screenshot('11-key-revoke-confirm');
    page.once('dialog', (dialog) => dialog.accept());
    await page.locator('button:has-text("Revoke key")').click();
    await page.locator('.notice:has-text("revoked")').waitFor();
    assert.match(await keyRow(keyName).innerText(), /revoked/);
    const gone = await chat(createdKey);
    assert.equal(gone.status, 401);
    assert.match(gone.body.error.message, /revoked/);
    await screenshot('12-keys', { readme: true });
});

test('Users: add one, change a role, delete one after seeing what it revokes', async () => {
    await page.goto(`${GATEWAY_URL}/admin/users`);
    await page.locator('#create summary').click();
    await page.locator('#create-name').fill(`erin-${RUN}`);
    await page.locator('button:has-text("Add user")').click();
    await page.locator('.notice:has-text("added")').waitFor();
    const erin = page.locator(`tr[data-user="erin-${RUN}"]`);
    await erin.locator('select').selectOption('admin');
    await erin.locator('button:has-text("Save")').click();
    await page.locator('.notice:has-text("is now admin")').waitFor();
    await screenshot('13-users', { readme: true });

    await page.locator(`tr[data-user="${userName}"] a:has-text("Delete")`).click();
    await page.locator(`li:has-text("${userKeyName}")`).waitFor();
    assert.match(await page.locator('main').innerText(), /revokes 1 key/);
    await screenshot('14-user-delete-confirm');
    page.once('dialog', (dialog) => dialog.accept());
    await page.locator('button:has-text("Delete user")').click();
    await page.locator('.notice:has-text("1 key revoked")').waitFor();
    assert.equal(await page.locator(`tr[data-user="${userName}"]`).count(), 0);
});

test('Live: open streams and refusals, refreshed without a reload', async () => {
    const made = await adminApi('POST', '/admin/api/keys', { name: `live-${RUN}` });
    assert.equal(made.status, 201);
    const liveKey = made.body.key;
    // A few refusals, and streams that stay open (the fake stalls; the gateway's upstream
    // timeout ends each after 2 s) for as long as the page is watched.
    for (let i = 0; i < 3; i++) assert.equal((await chat('sk-wrong-key')).status, 401);
    let streaming = true;
    const streams = (async () => {
        while (streaming) {
            const response = await fetch(`${GATEWAY_URL}/v1/chat/completions`, {
                method: 'POST',
                headers: { Authorization: `Bearer ${liveKey}`, 'Content-Type': 'application/json' },
                body: JSON.stringify({ model: 'fail-stall', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
            });
            await response.text();
        }
    })();
    try {
        await page.goto(`${GATEWAY_URL}/admin/live`);
        const marker = await page.evaluate(() => {
            window.__notReloaded = true;
            return document.getElementById('live-status').textContent;
        });
        assert.equal(marker, '');
        await page.locator('#live-status:has-text("Updated")').waitFor({ timeout: 10_000 });
        // Wait for a refresh that catches one of the streams open (each lasts about 2 s).
        const row = page.locator('#in-flight tr', { hasText: `live-${RUN}` });
        const deadline = Date.now() + 15_000;
        for (;;) {
            if ((await row.count()) > 0 && Number(await row.locator('td').nth(3).innerText()) >= 1) break;
            assert.ok(Date.now() < deadline, 'no open stream of the key shown on the Live page');
            await page.waitForTimeout(250);
        }
        assert.match(await row.innerText(), /fail-stall/);
        await page.locator('#refusals tr', { hasText: 'invalid_api_key' }).waitFor();
        assert.equal(await page.evaluate(() => window.__notReloaded), true, 'refreshed in place');
        await screenshot('15-live', { readme: true });
    } finally {
        streaming = false;
        await streams;
    }
});

test('Settings: the effective configuration, secrets only as set/unset', async () => {
    await page.goto(`${GATEWAY_URL}/admin/settings`);
    const text = await page.locator('main').innerText();
    assert.match(text, /GATEWAY_CONFIG/);
    assert.match(text, /OLLAMA_URL/);
    const html = await page.content();
    for (const secret of [ADMIN_KEY, CLIENT_KEY]) assert.equal(html.includes(secret), false, 'no key is shown');
    await screenshot('16-settings', { readme: true });
});

test('a phone-width view of the Keys page', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.addCookies(await context.cookies());
    const small = await phone.newPage();
    await small.goto(`${GATEWAY_URL}/admin/keys`);
    await small.locator('h1:has-text("Keys")').waitFor();
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page itself does not scroll sideways (${overflow} px); wide tables scroll in their box`);
    await screenshot('17-keys-phone', { target: small });
    await phone.close();
});

test('a cross-site POST and a POST without the CSRF token are refused', async () => {
    // Another site (localhost is not 127.0.0.1 to the browser) with a form aimed at the console.
    const evil = createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(`<!doctype html><form id="f" method="post" action="${GATEWAY_URL}/admin/keys"><input name="name" value="evil-${RUN}"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
        const answer = page.waitForResponse((r) => r.url() === `${GATEWAY_URL}/admin/keys` && r.request().method() === 'POST');
        await page.goto(`http://localhost:${evil.address().port}/`);
        const response = await answer;
        assert.ok([401, 403].includes(response.status()), `cross-site POST answered ${response.status()}`);
        await screenshot('18-cross-site-refused');
    } finally {
        evil.close();
    }
    // Same origin, logged in, but no token: refused too.
    await page.goto(`${GATEWAY_URL}/admin/keys`);
    const status = await page.evaluate(async (name) => {
        const response = await fetch('/admin/keys', {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: `name=${name}`,
        });
        return { status: response.status, text: await response.text() };
    }, `evil2-${RUN}`);
    assert.equal(status.status, 403);
    assert.match(status.text, /CSRF/);
    const names = (await adminApi('GET', '/admin/api/keys')).body.data.map((k) => k.name);
    assert.equal(names.includes(`evil-${RUN}`), false, 'the cross-site form made no key');
    assert.equal(names.includes(`evil2-${RUN}`), false, 'the token-less POST made no key');
});

test('logout ends the session: the old cookie no longer opens the console', async () => {
    const before = (await context.cookies()).find((c) => c.name === 'og_session');
    await page.goto(`${GATEWAY_URL}/admin/keys`);
    await page.locator('button:has-text("Log out")').click();
    await page.locator('.notice:has-text("logged out")').waitFor();
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    await page.goto(`${GATEWAY_URL}/admin/keys`);
    assert.equal(new URL(page.url()).pathname, '/admin/login', 'no session');
    // The cookie a thief kept from before the logout is worthless.
    await context.addCookies([before]);
    await page.goto(`${GATEWAY_URL}/admin/usage`);
    assert.equal(new URL(page.url()).pathname, '/admin/login', 'the old session is revoked on the server');
    await screenshot('19-logged-out');
});

test('no uncaught errors in the pages', () => {
    assert.deepEqual(pageErrors, []);
});
