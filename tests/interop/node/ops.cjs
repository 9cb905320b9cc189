// Node BullMQ's own view of a queue: runs the operations given as JSON, in order, and prints one
// JSON line with each one's result (an error is a result too: {"error": message}).
// usage: node ops.cjs '<connection json>' <prefix> <queue> '<[{op, ...}] json>'
//   {op: "add", data, opts}         -> {id}
//   {op: "workers"}                 -> {count, names}   (queue.getWorkers())
//   {op: "job", id}                 -> {id, data, state, processedBy, attemptsMade, logs}
//   {op: "jobs"}                    -> [{id, data}] of waiting jobs, oldest first
//   {op: "pause"} / {op: "resume"} / {op: "obliterate"} (pauses first, force)
//   {op: "paused"}                  -> {paused}         (queue.isPaused())
//   {op: "counts"}                  -> {waiting, delayed, active, completed, failed, ...}
//   {op: "retry", id}               -> {retried: true}  (job.retry() of a failed job, as Bull
//                                       Board's "retry" does)
"use strict";
const { Queue, Job } = require("bullmq");

const [connectionJson, prefix, queueName, opsJson] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const ops = JSON.parse(opsJson);

async function run(queue, op) {
  switch (op.op) {
    case "add": {
      const job = await queue.add(queueName, op.data, op.opts || {});
      return { id: job.id };
    }
    case "workers": {
      const workers = await queue.getWorkers();
      return { count: workers.length, names: workers.map((w) => w.rawname || w.name) };
    }
    case "job": {
      const job = await Job.fromId(queue, op.id);
      if (!job) return { id: op.id, missing: true };
      const { logs } = await queue.getJobLogs(op.id);
      return {
        id: job.id,
        data: job.data,
        state: await job.getState(),
        processedBy: job.processedBy || null,
        attemptsMade: job.attemptsMade,
        logs,
      };
    }
    case "jobs": {
      const jobs = await queue.getJobs(["wait", "prioritized", "paused"], 0, -1, true);
      return jobs.map((job) => ({ id: job.id, data: job.data }));
    }
    case "pause":
      await queue.pause();
      return { paused: await queue.isPaused() };
    case "resume":
      await queue.resume();
      return { paused: await queue.isPaused() };
    case "paused":
      return { paused: await queue.isPaused() };
    case "counts":
      return await queue.getJobCounts();
    case "retry": {
      const job = await Job.fromId(queue, op.id);
      await job.retry("failed");
      return { retried: true };
    }
    case "obliterate":
      await queue.pause();
      await queue.obliterate({ force: true });
      return { obliterated: true };
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

async function main() {
  const queue = new Queue(queueName, { connection, prefix });
  const results = [];
  for (const op of ops) {
    try {
      results.push(await run(queue, op));
    } catch (err) {
      results.push({ error: String(err && err.message) });
    }
  }
  await queue.close();
  process.stdout.write(JSON.stringify(results) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ops failed: ${err && err.stack}\n`);
    process.exit(2);
  },
);
