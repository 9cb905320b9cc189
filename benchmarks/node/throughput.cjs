// Node BullMQ contender of benchmarks/throughput_redis.py: addBulk N no-op jobs in chunks of
// 1,000, then one Worker at concurrency C until all N completed. Prints one JSON line with the
// seconds each phase took and the worker process's CPU seconds while it processed.
// usage: node throughput.cjs '<connection json>' <prefix> <queue> <jobs> <concurrency>
"use strict";
const { Queue, Worker } = require("bullmq");

const [connectionJson, prefix, name, jobsText, concurrencyText] = process.argv.slice(2);
const connection = JSON.parse(connectionJson);
const jobs = Number(jobsText);
const concurrency = Number(concurrencyText);

function cpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function main() {
  const queue = new Queue(name, { connection, prefix });
  let started = performance.now();
  for (let chunk = 0; chunk < jobs; chunk += 1000) {
    const batch = [];
    for (let n = chunk; n < Math.min(jobs, chunk + 1000); n++) batch.push({ name, data: { n } });
    await queue.addBulk(batch);
  }
  const enqueueS = (performance.now() - started) / 1000;
  let completed = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));
  started = performance.now();
  const cpu = cpuSeconds();
  const worker = new Worker(name, async () => null, { connection, prefix, concurrency });
  worker.on("completed", () => {
    completed += 1;
    if (completed === jobs) resolveDone();
  });
  await done;
  const processS = (performance.now() - started) / 1000;
  const cpuS = cpuSeconds() - cpu;
  await worker.close();
  const counts = await queue.getJobCounts("completed");
  await queue.close();
  if (counts.completed !== jobs) throw new Error(`completed ${counts.completed} of ${jobs}`);
  process.stdout.write(JSON.stringify({ enqueue_s: enqueueS, process_s: processS, cpu_s: cpuS }) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  },
);
