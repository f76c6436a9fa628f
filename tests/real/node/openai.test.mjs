// openai-node, unchanged, through the gateway to the real Ollama: the same answers as the same
// client pointed at Ollama's own /v1 (fixed seed, temperature 0), and typed errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

const ours = new OpenAI({
  baseURL: `${process.env.GATEWAY_URL}/v1`,
  apiKey: process.env.GATEWAY_KEY,
  maxRetries: 0,
});
const theirs = new OpenAI({ baseURL: `${process.env.OLLAMA_URL}/v1`, apiKey: "unused", maxRetries: 0 });
const args = {
  model: "tiny",
  messages: [{ role: "user", content: "hello" }],
  max_tokens: 5,
  seed: 42,
  temperature: 0,
};

test("chat: the same text, finish reason and usage as Ollama's /v1", async () => {
  const [a, b] = [await ours.chat.completions.create(args), await theirs.chat.completions.create(args)];
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.ok(a.choices[0].message.content.length > 0);
  assert.equal(a.choices[0].finish_reason, "length");
  assert.deepEqual(a.usage, b.usage);
});

test("streamed chat: the same pieces and usage", async () => {
  const collect = async (client) => {
    const stream = await client.chat.completions.create({
      ...args,
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces = [];
    let usage = null;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) pieces.push(piece);
      if (chunk.usage) usage = chunk.usage;
    }
    return { pieces, usage };
  };
  const [a, b] = [await collect(ours), await collect(theirs)];
  assert.deepEqual(a, b);
  assert.equal(a.usage.completion_tokens, 5);
});

test("embeddings: the same numbers", async () => {
  const body = { model: "tiny-embed", input: "hello world", encoding_format: "float" };
  const [a, b] = [await ours.embeddings.create(body), await theirs.embeddings.create(body)];
  assert.deepEqual(a.data[0].embedding, b.data[0].embedding);
  assert.equal(a.data[0].embedding.length, 64);
});

test("real failures are typed errors", async () => {
  await assert.rejects(ours.chat.completions.create({ ...args, model: "nope" }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.code, "model_not_found");
    return true;
  });
  await assert.rejects(ours.chat.completions.create({ ...args, model: "tiny-embed" }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.match(err.message, /does not support chat/);
    return true;
  });
});
