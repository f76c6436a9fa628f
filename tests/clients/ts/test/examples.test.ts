// The README's fetch example (examples/fetch_stream.ts) runs against the gateway.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

import { GATEWAY_URL, KEY, ROOT, SKY } from "./helpers.ts";

const run = promisify(execFile);
const EXAMPLE = join(ROOT, "examples", "fetch_stream.ts");

function runExample(key: string) {
  return run(process.execPath, ["--import", "tsx", EXAMPLE], {
    env: { ...process.env, GATEWAY_URL, GATEWAY_KEY: key },
    timeout: 60_000,
  });
}

test("examples/fetch_stream.ts prints the streamed answer", async () => {
  const { stdout, stderr } = await runExample(KEY);
  assert.equal(stdout, `${SKY}\n`);
  assert.equal(stderr, "");
});

test("examples/fetch_stream.ts exits non-zero on a bad key", async () => {
  await assert.rejects(runExample("sk-wrong"), (err: any) => {
    assert.notEqual(err.code, 0);
    assert.match(err.stderr, /HTTP 401/);
    return true;
  });
});
