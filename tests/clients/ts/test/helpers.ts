// Shared by the TypeScript client tests: where the gateway is, the fake Ollama's canned
// answers, and stream readers written the way browser code reads a fetch body.

import { fileURLToPath } from "node:url";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through tests/clients/ts/run.sh`);
  return value;
}

export const GATEWAY_URL = env("GATEWAY_URL").replace(/\/+$/, "");
export const BASE_URL = `${GATEWAY_URL}/v1`;
export const KEY = env("GATEWAY_KEY");
export const LIMITED_KEY = env("GATEWAY_LIMITED_KEY");
export const RATELIMITED_KEY = env("GATEWAY_RATELIMITED_KEY");
export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

// fixtures/chat/*.ndjson, as the gateway relays them.
export const SKY = "The sky is blue because of Rayleigh scattering.";
export const QWEN_ANSWER =
  "The sky looks blue because air scatters short (blue) wavelengths of sunlight more strongly than long ones.";
export const QWEN_REASONING =
  "Okay, the user asks why the sky is blue. Sunlight scatters off air molecules; shorter wavelengths scatter more.";
export const NAMESPACED = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M";
export const QUESTION = [{ role: "user" as const, content: "Why is the sky blue?" }];

export const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};

export function authHeaders(key: string = KEY): Record<string, string> {
  return { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
}

export async function post(path: string, body: unknown, key: string = KEY): Promise<Response> {
  return fetch(`${GATEWAY_URL}${path}`, {
    method: "POST",
    headers: authHeaders(key),
    body: JSON.stringify(body),
  });
}

/** One server-sent event: its `data` lines joined with "\n" (the `event:` name when present). */
export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * Server-sent events from a fetch body, as a browser app reads them: decode the bytes with a
 * streaming TextDecoder (a multi-byte character may straddle two chunks), keep a buffer, cut it
 * at each blank line, and parse the complete events; whatever follows the last blank line waits
 * for the next chunk.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  let buffer = "";
  for await (const { text, done } of decodedText(body)) {
    buffer += text;
    // Line ends may be \r\n or \r too. A \r that ends the chunk may be half of a \r\n: keep it.
    const heldCr = !done && buffer.endsWith("\r");
    buffer = (heldCr ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n") + (heldCr ? "\r" : "");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseSseBlock(block);
      if (event) yield event;
    }
  }
  if (buffer.trim() !== "") throw new Error(`stream ended inside an event: ${JSON.stringify(buffer)}`);
}

/** The body as text, chunk by chunk, with a streaming TextDecoder; `done` marks the last piece. */
async function* decodedText(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ text: string; done: boolean }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      yield { text: done ? decoder.decode() : decoder.decode(value, { stream: true }), done };
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}

function parseSseBlock(block: string): SseEvent | undefined {
  const data: string[] = [];
  let event: string | undefined;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue; // comments: keep-alives
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
  }
  if (data.length === 0) return undefined;
  return event === undefined ? { data: data.join("\n") } : { event, data: data.join("\n") };
}

/** Lines of an NDJSON body (Ollama's streams), parsed, with the same buffering. */
export async function* readNdjson(body: ReadableStream<Uint8Array>): AsyncGenerator<any> {
  let buffer = "";
  for await (const { text } of decodedText(body)) {
    buffer += text;
    let end: number;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}

/** A body that hands out `bytes` in the given piece sizes (cycled), to split events anywhere. */
export function rechunk(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let offset = 0;
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const size = Math.max(1, sizes[i++ % sizes.length]!);
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Streams the fake Ollama saw cancelled by its reader (undefined when FAKE_URL is unset). */
export async function cancelledStreams(): Promise<number | undefined> {
  const fake = process.env.FAKE_URL;
  if (!fake) return undefined;
  const stats: any = await (await fetch(`${fake}/_fake/stats`)).json();
  return stats.cancelled_streams;
}

/** Poll until the cancelled-streams counter passes `before` (5 s at most); its last value. */
export async function waitForCancel(before: number): Promise<number> {
  const deadline = Date.now() + 5_000;
  let now = before;
  while (Date.now() < deadline) {
    now = (await cancelledStreams())!;
    if (now > before) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return now;
}
