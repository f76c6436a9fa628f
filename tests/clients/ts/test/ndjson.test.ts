// (c) fetch reading the NDJSON stream of POST /chat (Ollama's shape).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { GATEWAY_URL, QUESTION, SKY, authHeaders, collect, post, readNdjson, rechunk } from "./helpers.ts";

describe("fetch /chat (NDJSON)", () => {
  test("streams by default: content lines, then done", async () => {
    const response = await post("/chat", { model: "llama3.2", messages: QUESTION });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/x-ndjson/);
    const lines = await collect(readNdjson(response.body!));
    assert.ok(lines.length >= 3);
    const last = lines.at(-1);
    assert.equal(last.done, true);
    assert.equal(last.done_reason, "stop");
    assert.equal(typeof last.eval_count, "number");
    const body = lines.slice(0, -1);
    assert.ok(body.every((l) => l.done === false && typeof l.message?.content === "string"));
    assert.equal(lines.map((l) => l.message?.content ?? "").join(""), SKY);
    assert.ok(lines.every((l) => l.model === "llama3.2"));
  });

  test("lines split across arbitrary chunks parse the same", async () => {
    const response = await post("/chat", { model: "qwen3", messages: QUESTION });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const whole = await collect(readNdjson(rechunk(bytes, [bytes.length])));
    for (const sizes of [[1], [3, 7, 11], [100]]) {
      assert.deepEqual(await collect(readNdjson(rechunk(bytes, sizes))), whole);
    }
    const thinking = whole.map((l) => l.message?.thinking ?? "").join("");
    assert.ok(thinking.startsWith("Okay, the user"), thinking);
  });

  test("stream: false gives one JSON object", async () => {
    const response = await post("/chat", { model: "llama3.2", messages: QUESTION, stream: false });
    assert.equal(response.status, 200);
    const body: any = await response.json();
    assert.equal(body.done, true);
    assert.equal(body.message.role, "assistant");
    assert.equal(body.message.content, SKY);
  });

  test("mid-stream failure ends with an error line", async () => {
    const response = await post("/chat", { model: "fail-midstream", messages: QUESTION });
    assert.equal(response.status, 200);
    const lines = await collect(readNdjson(response.body!));
    const last = lines.at(-1);
    assert.equal(typeof last.error, "string");
    assert.ok(!lines.some((l) => l.done === true));
    assert.equal(lines.slice(0, -1).map((l) => l.message?.content ?? "").join(""), "The sky is");
  });

  test("errors in Ollama's shape", async () => {
    const bad = await post("/chat", { model: "llama3.2", messages: QUESTION }, "sk-wrong");
    assert.equal(bad.status, 401);
    assert.equal(typeof ((await bad.json()) as any).error, "string");
    const missing = await post("/chat", { model: "no-such-model", messages: QUESTION });
    assert.equal(missing.status, 404);
    assert.equal(typeof ((await missing.json()) as any).error, "string");
  });

  test("GET /models lists Ollama's tags", async () => {
    const response = await fetch(`${GATEWAY_URL}/models`, { headers: authHeaders() });
    assert.equal(response.status, 200);
    const body: any = await response.json();
    assert.ok(body.models.some((m: any) => m.name === "llama3.2:latest"));
  });
});
