// Real local Cloudflare Queues (miniflare, the simulator wrangler dev runs) with the queue
// settings of a generated wrangler.jsonc, and a JavaScript consumer that forwards each batch
// to the Python Worker running in CPython over loopback HTTP and applies its verdicts to the
// real messages. A Python Worker cannot start offline (its Pyodide bundle is downloaded at
// start), so this stands in for the Pyodide step only.
//
//   node bridge.mjs <prefix> <wrangler.jsonc> <python bridge url>
// prints {"url": ...} once ready; exits when stdin closes.
import { createRequire } from "node:module";
import path from "node:path";

const [prefix, configPath, pythonUrl] = process.argv.slice(2);
const require = createRequire(path.join(prefix, "node_modules", "x.js"));
const { Miniflare } = require("miniflare");
const { unstable_getMiniflareWorkerOptions } = require("wrangler");

const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
// Every queue without a consumer (pikkugen's dead-letter queues) gets one too, so the test
// sees what arrives there.
const consumers = { ...(workerOptions.queueConsumers ?? {}) };
const producers = workerOptions.queueProducers ?? {};
const produced = Array.isArray(producers)
  ? producers
  : Object.values(producers).map((p) => (typeof p === "string" ? p : p.queueName));
for (const name of produced) {
  if (!consumers[name]) {
    consumers[name] = { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 0 };
  }
}

// The consumer: one POST per batch; the answer is [{id, kind, delaySeconds}] verdicts plus the
// sends the Python side made through its bindings (dead-letter records), applied here first.
const script = `
export default {
  async fetch(request, env) {
    const { binding, body, contentType, delaySeconds } = await request.json();
    await env[binding].send(body, { contentType, delaySeconds });
    return new Response("sent");
  },
  async queue(batch, env) {
    const messages = batch.messages.map((m) => ({
      id: m.id,
      body: m.body instanceof ArrayBuffer ? { bytes: Array.from(new Uint8Array(m.body)) } : m.body,
      attempts: m.attempts,
      timestamp: m.timestamp.getTime(),
    }));
    const response = await env.PYTHON.fetch("http://python/batch", {
      method: "POST",
      body: JSON.stringify({ queue: batch.queue, messages }),
    });
    if (!response.ok) throw new Error("python side: " + response.status);
    const { verdicts, sends } = await response.json();
    for (const s of sends) {
      await env[s.binding].send(s.body, { contentType: s.contentType ?? "json", delaySeconds: s.delaySeconds });
    }
    const byId = new Map(batch.messages.map((m) => [m.id, m]));
    for (const v of verdicts) {
      const m = byId.get(v.id);
      if (v.kind === "ack") m.ack();
      else m.retry(v.delaySeconds === null ? undefined : { delaySeconds: v.delaySeconds });
    }
  },
};`;

const mf = new Miniflare({
  ...workerOptions,
  queueConsumers: consumers,
  modules: true,
  script,
  compatibilityFlags: [],
  host: "127.0.0.1",
  port: 0,
  serviceBindings: {
    PYTHON: async (request) => {
      const forwarded = await fetch(pythonUrl, { method: "POST", body: await request.text() });
      return new Response(await forwarded.text(), { status: forwarded.status });
    },
  },
});
const url = await mf.ready;
process.stdout.write(JSON.stringify({ url: url.href }) + "\n");
process.stdin.resume();
process.stdin.on("end", async () => {
  await mf.dispose();
  process.exit(0);
});
