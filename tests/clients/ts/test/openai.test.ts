// (b) The openai npm package against the gateway: the scenarios of the Python suite.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import OpenAI from "openai";

import {
  BASE_URL,
  KEY,
  LIMITED_KEY,
  NAMESPACED,
  QUESTION,
  QWEN_ANSWER,
  QWEN_REASONING,
  RATELIMITED_KEY,
  SKY,
  WEATHER_TOOL,
  cancelledStreams,
  waitForCancel,
} from "./helpers.ts";

function client(apiKey: string = KEY): OpenAI {
  return new OpenAI({ baseURL: BASE_URL, apiKey, maxRetries: 0, timeout: 30_000 });
}

const openai = client();

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: any[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.constructor?.name}: ${err}`);
    return err as E;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

function assertErrorBody(err: InstanceType<typeof OpenAI.APIError>): void {
  const body = err.error as Record<string, unknown> | undefined;
  assert.ok(body && typeof body === "object", "the error body is OpenAI's error object");
  assert.equal(typeof body.message, "string");
  assert.ok("type" in body && "param" in body && "code" in body);
}

describe("openai npm package", () => {
  test("models list and retrieve, namespaced id included", async () => {
    const ids: string[] = [];
    for await (const model of openai.models.list()) {
      assert.equal(model.object, "model");
      ids.push(model.id);
    }
    for (const id of ["llama3.2:latest", "qwen3:latest", "all-minilm:latest", NAMESPACED]) {
      assert.ok(ids.includes(id), `${id} in ${ids}`);
    }
    const model = await openai.models.retrieve("llama3.2:latest");
    assert.equal(model.id, "llama3.2:latest");
    assert.equal(model.owned_by, "library");
    // The SDK percent-encodes the slashes: /v1/models/hf.co%2Fbartowski%2F...
    const namespaced = await openai.models.retrieve(NAMESPACED);
    assert.equal(namespaced.id, NAMESPACED);
    assert.equal(namespaced.owned_by, "bartowski");
  });

  test("chat, non-streamed", async () => {
    const completion = await openai.chat.completions.create({ model: "llama3.2", messages: QUESTION });
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.choices[0]!.message.content, SKY);
    assert.equal(completion.choices[0]!.finish_reason, "stop");
    assert.equal(completion.usage?.total_tokens, 41);
  });

  test("chat, streamed: text equals the concatenated deltas", async () => {
    const stream = await openai.chat.completions.create({ model: "llama3.2", messages: QUESTION, stream: true });
    let text = "";
    const finishes: string[] = [];
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
    }
    assert.equal(text, SKY);
    assert.deepEqual(finishes, ["stop"]);
    assert.equal(ids.size, 1);
  });

  test("stream helper: finalChatCompletion", async () => {
    const runner = openai.chat.completions.stream({ model: "llama3.2", messages: QUESTION });
    let deltas = "";
    runner.on("content", (delta) => {
      deltas += delta;
    });
    const final = await runner.finalChatCompletion();
    assert.equal(deltas, SKY);
    assert.equal(final.choices[0]!.message.content, SKY);
  });

  test("stream with include_usage", async () => {
    const stream = await openai.chat.completions.create({
      model: "llama3.2",
      messages: QUESTION,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 31, completion_tokens: 10, total_tokens: 41 });
    assert.ok(chunks.slice(0, -1).every((c) => !c.usage));
  });

  test("reasoning: qwen3 non-streamed and streamed", async () => {
    const completion = await openai.chat.completions.create({ model: "qwen3", messages: QUESTION });
    const message = completion.choices[0]!.message as typeof completion.choices[0]["message"] & {
      reasoning_content?: string;
    };
    assert.equal(message.content, QWEN_ANSWER);
    assert.equal(message.reasoning_content, QWEN_REASONING);

    const stream = await openai.chat.completions.create({ model: "qwen3", messages: QUESTION, stream: true });
    let reasoning = "";
    let content = "";
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) {
        assert.equal(content, "", "reasoning comes before content");
        reasoning += delta.reasoning_content;
      }
      content += delta?.content ?? "";
    }
    assert.equal(reasoning, QWEN_REASONING);
    assert.equal(content, QWEN_ANSWER);
  });

  test("tools: streamed tool calls accumulated by index, then a tool-result round trip", async () => {
    const ask = [{ role: "user" as const, content: "Weather in Tokyo and Paris?" }];
    const stream = await openai.chat.completions.create({
      model: "llama3.2",
      messages: ask,
      tools: [WEATHER_TOOL],
      stream: true,
    });
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    const finishes: string[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const fragment of choice.delta.tool_calls ?? []) {
        const call = calls.get(fragment.index) ?? { id: "", name: "", arguments: "" };
        call.id ||= fragment.id ?? "";
        call.name += fragment.function?.name ?? "";
        call.arguments += fragment.function?.arguments ?? "";
        calls.set(fragment.index, call);
      }
      if (choice.finish_reason) finishes.push(choice.finish_reason);
    }
    assert.deepEqual([...calls.keys()].sort(), [0, 1]);
    assert.deepEqual(finishes, ["tool_calls"]);
    const ordered = [0, 1].map((i) => calls.get(i)!);
    assert.deepEqual(ordered.map((c) => c.name), ["get_weather", "get_weather"]);
    assert.deepEqual(ordered.map((c) => JSON.parse(c.arguments)), [{ city: "Tokyo" }, { city: "Paris" }]);
    assert.ok(ordered.every((c) => c.id.length > 0));
    assert.notEqual(ordered[0]!.id, ordered[1]!.id);

    const answer = await openai.chat.completions.create({
      model: "llama3.2",
      tools: [WEATHER_TOOL],
      messages: [
        ...ask,
        {
          role: "assistant",
          content: null,
          tool_calls: ordered.map((c) => ({
            id: c.id,
            type: "function" as const,
            function: { name: c.name, arguments: c.arguments },
          })),
        },
        ...ordered.map((c) => ({ role: "tool" as const, tool_call_id: c.id, content: "18C, sunny" })),
      ],
    });
    assert.equal(answer.choices[0]!.finish_reason, "stop");
    assert.equal(answer.choices[0]!.message.content, SKY);
    assert.equal(answer.choices[0]!.message.tool_calls ?? undefined, undefined);
  });

  test("structured output: json_schema response_format", async () => {
    const completion = await openai.chat.completions.create({
      model: "llama3.2",
      messages: [{ role: "user", content: "Who wrote the first program? JSON please." }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "person",
          strict: true,
          schema: {
            type: "object",
            properties: { name: { type: "string" }, age: { type: "integer" } },
            required: ["name", "age"],
            additionalProperties: false,
          },
        },
      },
    });
    assert.deepEqual(JSON.parse(completion.choices[0]!.message.content ?? ""), { name: "Ada", age: 36 });
  });

  test("embeddings: the SDK's default (base64, decoded) and explicit float agree", async () => {
    const byDefault = await openai.embeddings.create({ model: "all-minilm", input: "The sky is blue" });
    const floats = await openai.embeddings.create({
      model: "all-minilm",
      input: "The sky is blue",
      encoding_format: "float",
    });
    const a = byDefault.data[0]!.embedding;
    const b = floats.data[0]!.embedding;
    assert.ok(Array.isArray(a) && a.length > 0);
    assert.equal(a.length, b.length);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-6, `component ${i}: ${x} vs ${b[i]}`));
    const norm = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `unit vector, norm ${norm}`);

    const batch = await openai.embeddings.create({ model: "all-minilm", input: ["one", "two"] });
    assert.deepEqual(batch.data.map((d) => d.index), [0, 1]);
  });

  test("legacy completions", async () => {
    const completion = await openai.completions.create({ model: "llama3.2", prompt: "Why is the sky blue?" });
    assert.equal(completion.object, "text_completion");
    assert.equal(completion.choices[0]!.text, SKY);
    const stream = await openai.completions.create({ model: "llama3.2", prompt: "Why?", stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    assert.equal(text, SKY);
  });

  test("typed errors: 401, 400, 404, 403", async () => {
    const auth = await rejectsWith(
      client("sk-wrong").chat.completions.create({ model: "llama3.2", messages: QUESTION }),
      OpenAI.AuthenticationError,
    );
    assert.equal(auth.status, 401);
    assertErrorBody(auth);

    const bad = await rejectsWith(
      openai.chat.completions.create({ model: "llama3.2", messages: QUESTION, temperature: 5 }),
      OpenAI.BadRequestError,
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.type, "invalid_request_error");
    assert.equal(bad.param, "temperature");

    const missing = await rejectsWith(
      openai.chat.completions.create({ model: "no-such-model", messages: QUESTION }),
      OpenAI.NotFoundError,
    );
    assert.equal(missing.code, "model_not_found");
    assertErrorBody(missing);

    const limited = client(LIMITED_KEY);
    const denied = await rejectsWith(
      limited.chat.completions.create({ model: "qwen3", messages: QUESTION }),
      OpenAI.PermissionDeniedError,
    );
    assert.equal(denied.status, 403);
    assert.equal(denied.code, "model_not_allowed");
    const allowed = await limited.chat.completions.create({ model: "llama3.2", messages: QUESTION });
    assert.equal(allowed.choices[0]!.message.content, SKY);
  });

  test("typed errors: 429 on the rate-limited key, with Retry-After", async () => {
    // One request a minute for the whole run: the first call may already be refused, the second must be.
    const limited = client(RATELIMITED_KEY);
    const errors: InstanceType<typeof OpenAI.RateLimitError>[] = [];
    for (let i = 0; i < 2; i++) {
      try {
        await limited.models.list();
      } catch (err) {
        assert.ok(err instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${err}`);
        errors.push(err);
      }
    }
    assert.ok(errors.length > 0, "the second request in a row must be refused");
    const err = errors.at(-1)!;
    assert.equal(err.status, 429);
    assertErrorBody(err);
    const retryAfter = err.headers?.get("retry-after");
    assert.match(retryAfter ?? "", /^\d+$/);
    assert.ok(Number(retryAfter) >= 1);
  });

  test("APIError raised while iterating a stream that fails mid-way", async () => {
    const stream = await openai.chat.completions.create({ model: "fail-midstream", messages: QUESTION, stream: true });
    let text = "";
    const err = await rejectsWith(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      })(),
      OpenAI.APIError,
    );
    assert.equal(text, "The sky is", "the text before the failure arrives first");
    assert.ok(err.message.length > 0);
  });

  test("stream.controller.abort() stops the upstream generation", async (t) => {
    const before = await cancelledStreams();
    if (before === undefined) return t.skip("FAKE_URL is not set: the upstream's counters cannot be read");
    const stream = await openai.chat.completions.create({
      model: "bench",
      messages: [{ role: "user", content: "go" }],
      max_tokens: 1_000_000,
      stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) {
      if (++chunks === 5) stream.controller.abort();
    }
    assert.ok(chunks >= 5);
    assert.ok((await waitForCancel(before)) > before, "the upstream stream is still running");
  });

  test("20 concurrent streams all complete and are correct", async () => {
    const run = async (i: number) => {
      const model = i % 2 === 0 ? "llama3.2" : "qwen3";
      const stream = await openai.chat.completions.create({
        model,
        messages: [{ role: "user", content: `Request ${i}` }],
        stream: true,
      });
      let text = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { model, text, finish };
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => run(i)));
    for (const [i, r] of results.entries()) {
      assert.equal(r.text, r.model === "llama3.2" ? SKY : QWEN_ANSWER, `stream ${i}`);
      assert.equal(r.finish, "stop", `stream ${i}`);
    }
  });
});
