// (a) Plain fetch against /v1/chat/completions, reading the SSE body from response.body the way
// browser code does. No SDK.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  GATEWAY_URL,
  QUESTION,
  SKY,
  authHeaders,
  cancelledStreams,
  collect,
  post,
  readSse,
  rechunk,
  waitForCancel,
  type SseEvent,
} from "./helpers.ts";

function chunksOf(events: SseEvent[]): any[] {
  assert.equal(events.at(-1)?.data, "[DONE]", "the stream ends with data: [DONE]");
  return events.slice(0, -1).map((e) => JSON.parse(e.data));
}

function textOf(chunks: any[]): string {
  return chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
}

describe("fetch /v1/chat/completions", () => {
  test("non-streamed", async () => {
    const response = await post("/v1/chat/completions", { model: "llama3.2", messages: QUESTION });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    const body: any = await response.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].message.role, "assistant");
    assert.equal(body.choices[0].message.content, SKY);
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 31, completion_tokens: 10, total_tokens: 41 });
  });

  test("streamed: SSE events from response.body", async () => {
    const response = await post("/v1/chat/completions", { model: "llama3.2", messages: QUESTION, stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.ok(response.body);
    const chunks = chunksOf(await collect(readSse(response.body)));
    assert.ok(chunks.length >= 3);
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    assert.equal(textOf(chunks), SKY);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1, "one id for the whole stream");
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
  });

  test("streamed with include_usage: last chunk has usage and no choices", async () => {
    const response = await post("/v1/chat/completions", {
      model: "llama3.2",
      messages: QUESTION,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = chunksOf(await collect(readSse(response.body!)));
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 31, completion_tokens: 10, total_tokens: 41 });
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null), "usage is null before the last chunk");
    assert.equal(textOf(chunks.slice(0, -1)), SKY);
  });

  test("events split across arbitrary chunk boundaries parse the same", async () => {
    const response = await post("/v1/chat/completions", {
      model: "qwen3",
      messages: QUESTION,
      stream: true,
      stream_options: { include_usage: true },
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const whole = await collect(readSse(rechunk(bytes, [bytes.length])));
    assert.ok(whole.length > 10);
    // One byte at a time, then sizes that cut "data:", the JSON, and the blank line in places.
    for (const sizes of [[1], [2, 3, 5, 7], [13], [64, 1, 1], [500]]) {
      const events = await collect(readSse(rechunk(bytes, sizes)));
      assert.deepEqual(events, whole, `pieces of ${sizes.join(",")} bytes`);
    }
  });

  test("multi-byte characters split between chunks decode intact", async () => {
    // The reader's own framing, on a body whose UTF-8 sequences are cut in half.
    const text = 'data: {"c":"héllo — ☀️ 🌈"}\n\ndata: [DONE]\n\n';
    const bytes = new TextEncoder().encode(text);
    const events = await collect(readSse(rechunk(bytes, [1])));
    assert.deepEqual(events, [{ data: '{"c":"héllo — ☀️ 🌈"}' }, { data: "[DONE]" }]);
  });

  test("mid-stream failure: an error event and no [DONE]", async () => {
    const response = await post("/v1/chat/completions", {
      model: "fail-midstream",
      messages: QUESTION,
      stream: true,
    });
    assert.equal(response.status, 200, "the failure comes after the headers");
    const events = await collect(readSse(response.body!));
    assert.ok(!events.some((e) => e.data === "[DONE]"), "no [DONE] after a failure");
    const last = JSON.parse(events.at(-1)!.data);
    assert.equal(typeof last.error?.message, "string");
    assert.ok(last.error.message.length > 0);
    const before = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.equal(textOf(before), "The sky is");
  });

  test("errors are JSON before any event", async () => {
    const bad = await post("/v1/chat/completions", { model: "llama3.2", messages: QUESTION, stream: true }, "sk-wrong");
    assert.equal(bad.status, 401);
    const body: any = await bad.json();
    assert.equal(typeof body.error.message, "string");
    assert.ok("type" in body.error && "param" in body.error && "code" in body.error);

    const missing = await post("/v1/chat/completions", { model: "no-such-model", messages: QUESTION, stream: true });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, "model_not_found");
  });

  test("aborting the fetch stops the upstream generation", async (t) => {
    const before = await cancelledStreams();
    if (before === undefined) return t.skip("FAKE_URL is not set: the upstream's counters cannot be read");
    const controller = new AbortController();
    const response = await fetch(`${GATEWAY_URL}/v1/chat/completions`, {
      method: "POST",
      headers: authHeaders(),
      body: JSON.stringify({
        model: "bench",
        messages: [{ role: "user", content: "go" }],
        max_tokens: 1_000_000,
        stream: true,
      }),
      signal: controller.signal,
    });
    let events = 0;
    for await (const _ of readSse(response.body!)) {
      if (++events === 5) {
        controller.abort(); // what a "Stop generating" button does
        break;
      }
    }
    assert.equal(events, 5);
    await assert.rejects(response.body!.getReader().read(), (err: Error) => err.name === "AbortError");
    assert.ok((await waitForCancel(before)) > before, "the upstream stream is still running");
  });

  test("embeddings: base64 decoded into a Float32Array as a browser would", async () => {
    const encoded: any = await (
      await post("/v1/embeddings", { model: "all-minilm", input: "The sky is blue", encoding_format: "base64" })
    ).json();
    const floats: any = await (
      await post("/v1/embeddings", { model: "all-minilm", input: "The sky is blue", encoding_format: "float" })
    ).json();
    const binary = atob(encoded.data[0].embedding);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
    const expected: number[] = floats.data[0].embedding;
    assert.equal(decoded.length, expected.length);
    decoded.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-6, `component ${i}`));
  });

  test("CORS preflight from a browser origin", async () => {
    const response = await fetch(`${process.env.GATEWAY_URL}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://localhost:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
      },
    });
    assert.ok(response.status === 200 || response.status === 204, `status ${response.status}`);
    assert.ok(response.headers.get("access-control-allow-origin"));
    const allowed = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    assert.ok(allowed === "*" || allowed.includes("authorization"), allowed);
  });
});
