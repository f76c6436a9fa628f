// A streamed chat completion read by a page in Chromium over HTTPS and HTTP/2: the page comes
// from the gateway itself (/health: a light page, so the fetch is same-origin and the page's own
// rendering does not hold up the reads, as Swagger UI's would on a busy machine), `fetch` streams
// /v1/chat/completions and the page reads the SSE chunks as they arrive. Needs GATEWAY_HTTPS_URL
// (a gateway with GATEWAY_TLS_CERT/KEY, in front of a fake Ollama that paces its tokens),
// TLS_SPKI (the base64 SHA-256 of the certificate's public key, which Chromium is told to trust),
// and GATEWAY_URL/GATEWAY_KEY (the plain-HTTP gateway, for the same stream over HTTP/1.1).
// tests/browser/run.sh sets them all.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HTTPS_URL = (process.env.GATEWAY_HTTPS_URL || '').replace(/\/+$/, '');
const PLAIN_URL = (process.env.GATEWAY_URL || '').replace(/\/+$/, '');
const KEY = process.env.GATEWAY_KEY || '';
const SPKI = process.env.TLS_SPKI || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const CHAT = {
    model: 'llama3.2',
    messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    stream: true,
};
// The fake behind the HTTPS gateway waits 50 ms for the first token, then 60 ms between tokens.
const CHUNK_GAP_MS = 60;

if (!HTTPS_URL || !PLAIN_URL || !KEY || !SPKI) {
    throw new Error('GATEWAY_HTTPS_URL, TLS_SPKI, GATEWAY_URL and GATEWAY_KEY must be set (tests/browser/run.sh)');
}

let browser;

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
            // Trust exactly the test certificate's key, nothing else.
            `--ignore-certificate-errors-spki-list=${SPKI}`,
        ],
    });
});

after(async () => {
    await browser?.close();
});

/** The text of an SSE stream: every `data:` payload but `[DONE]`, parsed; and whether it ended. */
function parseSse(text) {
    const events = [];
    let done = false;
    for (const block of text.split('\n\n')) {
        for (const line of block.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') done = true;
            else events.push(JSON.parse(data));
        }
    }
    return { events, done };
}

const contentOf = (events) => events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('');

test('Chromium streams a chat completion over HTTP/2 from the HTTPS gateway', async (t) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    const loaded = await page.goto(`${HTTPS_URL}/health`);
    assert.equal(loaded.status(), 200, 'the page loads over HTTPS with the test key trusted');
    assert.equal((await loaded.securityDetails())?.subjectName, '127.0.0.1', 'our certificate');

    const read = await page.evaluate(async ({ body, key }) => {
        const started = performance.now();
        const response = await fetch('/v1/chat/completions', {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
        });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        const reads = [];
        let text = '';
        for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            const chunk = decoder.decode(value, { stream: true });
            text += chunk;
            // When each piece arrived, and how many content deltas it held.
            reads.push({ at: performance.now() - started, deltas: (chunk.match(/"content":"/g) || []).length });
        }
        // The fetch's resource timing entry is queued when the response ends, which may be a
        // moment after the last read: wait for it (up to 2 s) rather than read it too early.
        let entry;
        for (let tries = 0; tries < 100 && !entry; tries++) {
            entry = performance
                .getEntriesByType('resource')
                .filter((e) => e.name.endsWith('/v1/chat/completions'))
                .pop();
            if (!entry) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return {
            status: response.status,
            contentType: response.headers.get('content-type'),
            text,
            reads,
            protocol: entry?.nextHopProtocol,
            pageProtocol: performance.getEntriesByType('navigation')[0]?.nextHopProtocol,
        };
    }, { body: CHAT, key: KEY });

    assert.equal(read.status, 200, read.text);
    assert.match(read.contentType, /^text\/event-stream/);
    assert.equal(read.protocol, 'h2', 'the fetch went over HTTP/2');
    assert.equal(read.pageProtocol, 'h2', 'so did the page');

    const { events, done } = parseSse(read.text);
    assert.ok(done, 'the stream ends with [DONE]');
    const finish = events.map((e) => e.choices?.[0]?.finish_reason).filter(Boolean);
    assert.deepEqual(finish, ['stop'], 'one finish reason, at the end');
    const content = contentOf(events);
    assert.ok(content.length > 0, 'content was streamed');

    // Read as it came: the deltas arrived in many pieces, spread over the fake's pacing, not in
    // one piece at the end.
    const withContent = read.reads.filter((r) => r.deltas > 0);
    const deltas = events.filter((e) => e.choices?.[0]?.delta?.content).length;
    assert.ok(deltas >= 5, `enough tokens to see pacing (${deltas})`);
    assert.ok(withContent.length >= deltas / 2, `pieces read: ${withContent.length} for ${deltas} tokens`);
    const spread = withContent.at(-1).at - withContent[0].at;
    t.diagnostic(`${read.protocol}: ${deltas} tokens in ${withContent.length} reads, first to last ${spread.toFixed(0)} ms`);
    assert.ok(
        spread >= (deltas - 1) * CHUNK_GAP_MS * 0.5,
        `the first and the last token arrived ${spread.toFixed(0)} ms apart (${deltas} tokens, ${CHUNK_GAP_MS} ms apart)`,
    );

    // The same stream over plain HTTP/1.1 from the other gateway (same fixtures) has the same text.
    const plain = await fetch(`${PLAIN_URL}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(CHAT),
    });
    assert.equal(plain.status, 200);
    const overHttp1 = parseSse(await plain.text());
    assert.ok(overHttp1.done);
    assert.equal(content, contentOf(overHttp1.events), 'the same text as over HTTP/1.1');

    await page.screenshot({ path: join(ARTIFACTS, '10-h2-streaming.png') });
    assert.deepEqual(pageErrors, []);
    await context.close();
});
