// A Node BullMQ worker whose processor fails a job's first two attempts (whoever ran them:
// it reads the job's attemptsMade) and completes the third. Runs until the queue holds `total`
// finished jobs, then prints one JSON line: how many attempts it ran, by attemptsMade, and
// how many of its failures BullMQ moved to failed for good (no retry left).
// usage: node flaky_worker.cjs '<connection json>' <prefix> <queue> <total>
"use strict";
const { Worker, Queue } = require("bullmq");

const [connectionJson, prefix, queueName, totalText] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const total = Number(totalText);
const byAttempt = {};
let ran = 0;
let failedForGood = 0;

const worker = new Worker(
  queueName,
  async (job) => {
    ran += 1;
    byAttempt[job.attemptsMade] = (byAttempt[job.attemptsMade] || 0) + 1;
    if (job.attemptsMade < 2) throw new Error(`flaky: attempt ${job.attemptsMade + 1}`);
    return { by: "node" };
  },
  { connection, prefix, concurrency: 5 },
);
worker.on("failed", (job) => {
  if (job && job.attemptsMade >= (job.opts.attempts || 1)) failedForGood += 1;
});
worker.on("error", (err) => process.stderr.write(`worker error: ${err}\n`));

const queue = new Queue(queueName, { connection, prefix });
const deadline = Date.now() + 120000;
async function watch() {
  for (;;) {
    const counts = await queue.getJobCounts("completed", "failed");
    if (counts.completed + counts.failed >= total) break;
    if (Date.now() > deadline) {
      process.stderr.write(`timed out: ${JSON.stringify(counts)}\n`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await worker.close();
  await queue.close();
  process.stdout.write(JSON.stringify({ ran, byAttempt, failedForGood }) + "\n");
  process.exit(0);
}
watch();
