// Node BullMQ contender of benchmarks/latency.py: one Worker and one QueueEvents in this
// process, then N times `queue.add` + `job.waitUntilFinished(queueEvents)` of a no-op job on an
// idle queue, one at a time. Prints one JSON line with every round trip in ms.
// usage: node latency.cjs '<connection json>' <prefix> <queue> <jobs> <warmup>
"use strict";
const { Queue, QueueEvents, Worker } = require("bullmq");

const [connectionJson, prefix, name, jobsText, warmupText] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const jobs = Number(jobsText);
const warmup = Number(warmupText);

async function main() {
  const queue = new Queue(name, { connection, prefix });
  const events = new QueueEvents(name, { connection, prefix });
  const worker = new Worker(name, async (job) => job.data.n, { connection, prefix });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  const ms = [];
  for (let n = 0; n < warmup + jobs; n++) {
    const started = performance.now();
    const job = await queue.add(name, { n });
    const result = await job.waitUntilFinished(events, 10000);
    const took = performance.now() - started;
    if (result !== n) throw new Error(`job ${n} returned ${result}`);
    if (n >= warmup) ms.push(took);
  }
  await worker.close();
  await events.close();
  await queue.close();
  process.stdout.write(JSON.stringify({ ms }) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  },
);
