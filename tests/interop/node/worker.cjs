// A Node BullMQ worker: processes `count` jobs of a queue one at a time and prints, as one
// JSON line, what it saw (id, data, priority, timestamps). Used by tests/interop.
// usage: node worker.cjs '<connection json>' <prefix> <queue> <count>
"use strict";
const { Worker } = require("bullmq");

const [connectionJson, prefix, queue, countText] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const count = Number(countText);
const seen = [];

const worker = new Worker(
  queue,
  async (job) => {
    seen.push({
      id: job.id,
      name: job.name,
      data: job.data,
      priority: job.priority,
      delay: job.opts.delay || 0,
      attempts: job.opts.attempts || 0,
      timestamp: job.timestamp,
      processedOn: job.processedOn,
    });
    if (seen.length === count) setImmediate(finish);
    return { echoed: job.data, by: "node" };
  },
  { connection, prefix, concurrency: 1, autorun: false },
);

let finished = false;
async function finish() {
  if (finished) return;
  finished = true;
  await worker.close();
  process.stdout.write(JSON.stringify(seen) + "\n");
  process.exit(0);
}

worker.on("error", (err) => process.stderr.write(`worker error: ${err}\n`));
setTimeout(() => {
  process.stderr.write(`timed out after seeing ${seen.length} of ${count} jobs\n`);
  process.exit(3);
}, 60000).unref();
worker.run();
