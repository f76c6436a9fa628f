// The gateway's Swagger UI (/docs/), used as a person would: in Debian's Chromium, driven by
// playwright-core. Needs GATEWAY_URL and GATEWAY_KEY (tests/support/servers.sh exports both).
// Screenshots go to tests/browser/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const GATEWAY_URL = (process.env.GATEWAY_URL || '').replace(/\/+$/, '');
const GATEWAY_KEY = process.env.GATEWAY_KEY || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
// Debug builds on 2 cores: be patient, but not forever.
const TIMEOUT_MS = 30_000;

const LIST_MODELS = '#operations-OpenAI-list_models';
const CHAT_COMPLETIONS = '#operations-OpenAI-chat_completions';
const CHAT_BODY = { model: 'llama3.2', messages: [{ role: 'user', content: 'Hi' }] };

if (!GATEWAY_URL || !GATEWAY_KEY) {
    throw new Error('GATEWAY_URL and GATEWAY_KEY must be set (source tests/support/servers.sh)');
}
mkdirSync(ARTIFACTS, { recursive: true });

let browser;
const pageErrors = [];

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
});

after(async () => {
    await browser?.close();
});

async function screenshot(page, name) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** A page on /docs/ in a fresh context (no stored authorization), operations rendered. */
async function openDocs() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    context.setDefaultTimeout(TIMEOUT_MS);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    const response = await page.goto(`${GATEWAY_URL}/docs/`);
    assert.equal(response.status(), 200, '/docs/ answers 200');
    await page.locator('.swagger-ui .information-container .title').waitFor();
    await page.locator(`${LIST_MODELS}`).waitFor();
    return page;
}

/** Expand an operation, press "Try it out" and return its block. */
async function tryItOut(page, selector) {
    const block = page.locator(selector);
    await block.scrollIntoViewIfNeeded();
    if (!(await block.evaluate((el) => el.classList.contains('is-open')))) {
        await block.locator('.opblock-summary').first().click();
    }
    await block.locator('button.try-out__btn').click();
    await block.locator('button.execute').waitFor();
    return block;
}

/** Press Execute and read the live response: { status, body, curl }. */
async function execute(block) {
    await block.locator('button.execute').click();
    const row = block.locator('.responses-wrapper .live-responses-table .response').first();
    const status = row.locator('.response-col_status');
    await status.waitFor();
    const body = row.locator('.response-col_description .highlight-code pre, .response-col_description pre').first();
    await body.waitFor();
    await row.scrollIntoViewIfNeeded();
    const curl = await block.locator('.responses-wrapper .curl-command').first().innerText();
    return { status: (await status.innerText()).trim(), body: await body.innerText(), curl };
}

test('Swagger UI renders every operation of /openapi.json', async () => {
    const page = await openDocs();
    const doc = await (await fetch(`${GATEWAY_URL}/openapi.json`)).json();
    const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
    const expected = Object.values(doc.paths).flatMap((item) =>
        Object.keys(item).filter((m) => methods.has(m)),
    ).length;
    assert.equal(await page.locator('.swagger-ui .opblock').count(), expected, 'one block per operation');
    assert.equal(await page.locator('.swagger-ui .errors-wrapper').count(), 0, 'no spec errors shown');
    const title = await page.locator('.swagger-ui .information-container .title').innerText();
    assert.match(title, new RegExp(doc.info.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await screenshot(page, '01-rendered');
    await page.context().close();
});

test('without authorizing, GET /v1/models shows 401', async () => {
    const page = await openDocs();
    const block = await tryItOut(page, LIST_MODELS);
    const { status, body, curl } = await execute(block);
    await screenshot(page, '02-models-401');
    assert.doesNotMatch(curl, /Authorization/i, 'no key sent before authorizing');
    assert.equal(status, '401', `status shown: ${status}\n${body}`);
    assert.match(body, /invalid_api_key|authentication_error/);
    await page.context().close();
});

test('after Authorize with the key: GET /v1/models, then POST /v1/chat/completions', async () => {
    const page = await openDocs();

    // Authorize: the padlock button at the top opens a dialog with the bearer field.
    await page.locator('.swagger-ui .auth-wrapper button.authorize').click();
    const dialog = page.locator('.swagger-ui .dialog-ux .modal-ux');
    await dialog.waitFor();
    await dialog.locator('.auth-container input').first().fill(GATEWAY_KEY);
    await screenshot(page, '03-authorize-dialog');
    await dialog.locator('.auth-btn-wrapper button.authorize').click();
    // Authorized: the dialog now offers Logout, then Close.
    await dialog.locator('.auth-btn-wrapper button.logout, .auth-btn-wrapper button:has-text("Logout")').first().waitFor();
    await dialog.locator('.auth-btn-wrapper button.btn-done').click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.swagger-ui .auth-wrapper button.authorize.locked').waitFor();

    const models = await tryItOut(page, LIST_MODELS);
    const listed = await execute(models);
    await screenshot(page, '04-models-200');
    assert.match(listed.curl, new RegExp(`Authorization: Bearer ${GATEWAY_KEY}`));
    assert.equal(listed.status, '200', `status shown: ${listed.status}\n${listed.body}`);
    assert.match(listed.body, /"object": "list"/);
    assert.match(listed.body, /llama3\.2/);

    const chat = await tryItOut(page, CHAT_COMPLETIONS);
    await chat.locator('textarea.body-param__text').fill(JSON.stringify(CHAT_BODY, null, 2));
    const answered = await execute(chat);
    await screenshot(page, '05-chat-completions-200');
    assert.equal(answered.status, '200', `status shown: ${answered.status}\n${answered.body}`);
    assert.match(answered.body, /"object": "chat\.completion"/);
    assert.match(answered.body, /"role": "assistant"/);
    await page.context().close();
});

test('no uncaught errors in the page', () => {
    assert.deepEqual(pageErrors, []);
});
