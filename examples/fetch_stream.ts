// Streamed chat with plain fetch (Node 18+, Deno, Bun or a browser): no SDK needed.
const baseUrl = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const apiKey = process.env.GATEWAY_KEY ?? "sk-your-gateway-key";

async function main(): Promise<void> {
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      model: "llama3.2",
      messages: [{ role: "user", content: "Why is the sky blue?" }],
      stream: true,
    }),
  });
  if (!response.ok || !response.body) {
    throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  }

  // Server-sent events: "data: {...}" events separated by a blank line, "data: [DONE]" last.
  // A network chunk can end in the middle of an event: keep the rest for the next read.
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") {
          process.stdout.write("\n");
          return;
        }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
      }
    }
  }
  throw new Error("the stream ended without [DONE]");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
