// (c) The @anthropic-ai/sdk npm package against the gateway's /v1/messages: create, stream,
// a tool-use round trip, thinking blocks and typed errors.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import Anthropic from "@anthropic-ai/sdk";

import { GATEWAY_URL, KEY, QUESTION, QWEN_ANSWER, QWEN_REASONING, SKY } from "./helpers.ts";

// The SDK sends the key as x-api-key and adds /v1/messages to the base URL.
function client(apiKey: string = KEY): Anthropic {
  return new Anthropic({ baseURL: GATEWAY_URL, apiKey, maxRetries: 0, timeout: 30_000 });
}

const claude = client();

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Current weather in a city",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string" } },
    required: ["city"],
  },
};
const ASK = [{ role: "user" as const, content: "What's the weather in Tokyo and Paris?" }];

describe("@anthropic-ai/sdk", () => {
  test("messages.create", async () => {
    const message = await claude.messages.create({ model: "llama3.2", max_tokens: 256, messages: QUESTION });
    assert.match(message.id, /^msg_/);
    assert.equal(message.stop_reason, "end_turn");
    const block = message.content[0];
    assert.ok(block && block.type === "text");
    assert.equal(block.text, SKY);
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);
  });

  test("messages.stream text", async () => {
    const pieces: string[] = [];
    const stream = claude.messages.stream({ model: "llama3.2", max_tokens: 256, messages: QUESTION });
    stream.on("text", (text) => pieces.push(text));
    const final = await stream.finalMessage();
    assert.equal(pieces.join(""), SKY);
    assert.ok(pieces.length > 1);
    assert.equal(final.stop_reason, "end_turn");
  });

  test("tool use round trip", async () => {
    const first = await claude.messages.create({
      model: "llama3.2",
      max_tokens: 256,
      tools: [WEATHER_TOOL],
      messages: ASK,
    });
    assert.equal(first.stop_reason, "tool_use");
    const uses = first.content.filter((b) => b.type === "tool_use");
    assert.deepEqual(
      uses.map((u) => u.input),
      [{ city: "Tokyo" }, { city: "Paris" }],
    );
    const second = await claude.messages.create({
      model: "llama3.2",
      max_tokens: 256,
      tools: [WEATHER_TOOL],
      messages: [
        ...ASK,
        { role: "assistant", content: first.content },
        {
          role: "user",
          content: uses.map((u) => ({ type: "tool_result" as const, tool_use_id: u.id, content: "clear" })),
        },
      ],
    });
    const block = second.content[0];
    assert.ok(block && block.type === "text");
    assert.equal(block.text, SKY);
  });

  test("thinking blocks, streamed", async () => {
    const stream = claude.messages.stream({
      model: "qwen3",
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: QUESTION,
    });
    let thoughts = "";
    stream.on("thinking", (delta) => {
      thoughts += delta;
    });
    const final = await stream.finalMessage();
    assert.equal(thoughts, QWEN_REASONING);
    assert.deepEqual(
      final.content.map((b) => b.type),
      ["thinking", "text"],
    );
    const text = final.content[1];
    assert.ok(text && text.type === "text");
    assert.equal(text.text, QWEN_ANSWER);
  });

  test("typed errors", async () => {
    await assert.rejects(
      claude.messages.create({ model: "llama3.2", max_tokens: 0, messages: QUESTION }),
      Anthropic.BadRequestError,
    );
    await assert.rejects(
      client("wrong").messages.create({ model: "llama3.2", max_tokens: 5, messages: QUESTION }),
      Anthropic.AuthenticationError,
    );
  });
});
