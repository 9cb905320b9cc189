// A Node BullMQ producer: adds the jobs given as JSON, waits until each one is finished (by
// whichever worker), and prints one JSON line with each job's final state and return value.
// usage: node producer.cjs '<connection json>' <prefix> <queue> '<[{data, opts}] json>'
"use strict";
const { Queue, Job } = require("bullmq");

const [connectionJson, prefix, queueName, jobsJson] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const jobs = JSON.parse(jobsJson);

async function main() {
  const queue = new Queue(queueName, { connection, prefix });
  const added = [];
  for (const job of jobs) added.push(await queue.add(queueName, job.data, job.opts || {}));
  process.stderr.write(`added ${added.map((j) => j.id).join(",")}\n`);
  const deadline = Date.now() + 60000;
  const results = [];
  for (const job of added) {
    for (;;) {
      const state = await queue.getJobState(job.id);
      if (state === "completed" || state === "failed") {
        const done = await Job.fromId(queue, job.id);
        results.push({
          id: job.id,
          state,
          returnvalue: done.returnvalue,
          failedReason: done.failedReason || null,
          attemptsMade: done.attemptsMade,
          progress: done.progress,
        });
        break;
      }
      if (Date.now() > deadline) throw new Error(`job ${job.id} still ${state}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await queue.close();
  process.stdout.write(JSON.stringify(results) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`producer failed: ${err && err.stack}\n`);
    process.exit(2);
  },
);
