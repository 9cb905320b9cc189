// The generated Python Worker on Pyodide (npm `pyodide`, under Node, offline), driven by
// JavaScript doubles of Cloudflare Queues that follow workerd's own contract:
//
// - producer (`queue.c++`): send(body, {contentType, delaySeconds}) and
//   sendBatch([{body, contentType, delaySeconds}], {delaySeconds}); contentType "json" (the
//   default) stores JSON.stringify(body), so `undefined` keys vanish and a BigInt throws
//   "Do not know how to serialize a BigInt"; "text" takes a string only, "bytes" an
//   ArrayBuffer or view, "v8" a structured clone; a message over 128 KB, more than 100
//   messages or 256 KB a batch, or a delay outside 0..43200 s is refused;
// - consumer: a MessageBatch (queue, messages, ackAll, retryAll) of Messages (id, timestamp
//   as a Date, body decoded per content type, attempts from 1, ack, retry({delaySeconds}));
//   the first verdict on a message wins; when the handler returns, a message without one is
//   acked; when it throws, retried; a message retried past max_retries goes to the
//   consumer's dead_letter_queue (or is dropped);
// - the Python entry point (`python-entrypoint-helper.ts`, `introspection.py`): the main
//   module's `Default` class is built with (ctx, env) and its `queue` / `scheduled` are
//   called through `introspection.wrapper_func`, whose arguments go through
//   `workers.python_from_rpc` (tests/cloudflare/pyodide/workers.py).
//
// Time is a counter the driver moves (`now`, seconds), so delays are checked exactly.
//
//   node pyodide_harness.mjs <config.json>
// config: {pyodide, wheels: [paths], mounts: [[host, path]], sysPath: [...],
//          modules: {name: file}, main: file, consumers: {queue: {...}}}
// Reads one JSON request a line on stdin, answers one JSON line each on stdout.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { loadPyodide } = await import(pathToFileURL(path.join(config.pyodide, "pyodide.mjs")).href);

const MAX_MESSAGE_BYTES = 128_000;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 256_000;
const MAX_DELAY_SECONDS = 43_200;
const METADATA_BYTES = 100;

let now = 0;
let ids = 0;
const stored = new Map(); // queue -> Map(id -> {id, contentType, data, timestampMs, visibleAt, attempts})
const log = []; // {queue, id, body, attempts, verdict: [kind, delay]}
const sends = []; // {queue, contentType, delaySeconds}

function queueOf(name) {
  if (!stored.has(name)) stored.set(name, new Map());
  return stored.get(name);
}

function checkDelay(delaySeconds) {
  if (delaySeconds === undefined) return 0;
  if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
    throw new RangeError(`delaySeconds must be a whole number from 0 to ${MAX_DELAY_SECONDS}`);
  }
  return delaySeconds;
}

// What queue.c++ stores for a body of each content type, and its size.
function serialise(body, contentType = "json") {
  if (contentType === "json") {
    const text = JSON.stringify(body); // throws on a BigInt
    if (text === undefined) throw new TypeError("the body cannot be serialised as JSON");
    return { contentType, data: text, size: Buffer.byteLength(text) };
  }
  if (contentType === "text") {
    if (typeof body !== "string") {
      throw new TypeError(`Content Type "text" requires a value of type string, but received: ${typeof body}`);
    }
    return { contentType, data: body, size: Buffer.byteLength(body) };
  }
  if (contentType === "bytes") {
    if (!(body instanceof ArrayBuffer) && !ArrayBuffer.isView(body)) {
      throw new TypeError('Content Type "bytes" requires a value of type ArrayBuffer or ArrayBufferView');
    }
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return { contentType, data: Uint8Array.from(bytes), size: bytes.byteLength };
  }
  if (contentType === "v8") {
    const data = structuredClone(body);
    return { contentType, data, size: 0 };
  }
  throw new TypeError(`Unknown Content Type "${contentType}"`);
}

function deserialise(message) {
  if (message.contentType === "json") return JSON.parse(message.data);
  if (message.contentType === "bytes") return Uint8Array.from(message.data).buffer;
  if (message.contentType === "v8") return structuredClone(message.data);
  return message.data;
}

function store(queue, serialised, delaySeconds) {
  const id = `msg-${++ids}`;
  queueOf(queue).set(id, {
    id,
    ...serialised,
    timestampMs: 1_700_000_000_000 + now * 1000,
    visibleAt: now + delaySeconds,
    attempts: 0,
  });
  sends.push({ queue, contentType: serialised.contentType, delaySeconds });
}

let failingSends = {}; // queue -> how many of its next sends fail

class WorkerQueue {
  #name;
  constructor(name) {
    this.#name = name;
  }
  #failing() {
    if ((failingSends[this.#name] ?? 0) > 0) {
      failingSends[this.#name] -= 1;
      throw new Error(`Queue send failed: queue ${this.#name} is unavailable`);
    }
  }
  async send(body, options = {}) {
    this.#failing();
    const serialised = serialise(body, options.contentType);
    if (serialised.size + METADATA_BYTES > MAX_MESSAGE_BYTES) throw new RangeError("Queue send failed: message too large");
    store(this.#name, serialised, checkDelay(options.delaySeconds));
  }
  async sendBatch(messages, options = {}) {
    this.#failing();
    const entries = Array.from(messages);
    if (entries.length > MAX_BATCH_MESSAGES) throw new RangeError("Queue sendBatch failed: too many messages");
    const all = entries.map((m) => [serialise(m.body, m.contentType), checkDelay(m.delaySeconds ?? options.delaySeconds)]);
    const total = all.reduce((sum, [s]) => sum + s.size + METADATA_BYTES, 0);
    if (total > MAX_BATCH_BYTES) throw new RangeError("Queue sendBatch failed: batch too large");
    for (const [serialised, delay] of all) store(this.#name, serialised, delay);
  }
}

class QueueMessage {
  #verdict = null;
  constructor(stored) {
    this.id = stored.id;
    this.timestamp = new Date(stored.timestampMs);
    this.body = deserialise(stored);
    this.attempts = stored.attempts;
  }
  ack() {
    if (this.#verdict === null) this.#verdict = ["ack", null];
  }
  retry(options = {}) {
    const delay = options?.delaySeconds;
    if (delay !== undefined) checkDelay(delay);
    if (this.#verdict === null) this.#verdict = ["retry", delay ?? null];
  }
  verdict() {
    return this.#verdict;
  }
}

class MessageBatch {
  constructor(queue, messages) {
    this.queue = queue;
    this.messages = messages;
  }
  ackAll() {
    for (const m of this.messages) m.ack();
  }
  retryAll(options = {}) {
    for (const m of this.messages) m.retry(options);
  }
}

class ScheduledController {
  constructor(cron) {
    this.cron = cron;
    this.scheduledTime = 1_700_000_000_000 + now * 1000;
  }
  noRetry() {}
}

// --- Pyodide, the wheels, the Worker's modules --------------------------------------------
const pyodide = await loadPyodide({ indexURL: config.pyodide + path.sep });
pyodide.runPython("import sys; sys.dont_write_bytecode = True");
for (const wheel of config.wheels) {
  pyodide.unpackArchive(new Uint8Array(fs.readFileSync(wheel)), "wheel");
}
for (const [host, target] of config.mounts) {
  pyodide.FS.mkdirTree(target);
  pyodide.mountNodeFS(target, host);
}
pyodide.globals.get("__import__")("sys").path.extend(pyodide.toPy(config.sysPath));
const importlib = pyodide.pyimport("importlib.util");
function loadModule(name, file) {
  const spec = importlib.spec_from_file_location(name, file);
  const module = importlib.module_from_spec(spec);
  pyodide.pyimport("sys").modules.set(name, module);
  spec.loader.exec_module(module);
  return module;
}
for (const [name, file] of Object.entries(config.modules)) loadModule(name, file);
const workers = pyodide.pyimport("workers");
const driver = pyodide.pyimport("driver");
driver.configure(config.main);

function env() {
  const bindings = {};
  for (const [queue, binding] of Object.entries(driver.bindings().toJs({ dict_converter: Object.fromEntries }))) {
    bindings[binding] = new WorkerQueue(queue);
  }
  return bindings;
}

async function call(method, arg) {
  // What workerd does for a WorkerEntrypoint subclass: construct it with (ctx, env), then call
  // the method through introspection.wrapper_func.
  const main = driver.main();
  const instance = main.Default({ waitUntil() {} }, env());
  await workers.wrapper_func(false, instance, method, arg);
}

async function deliver(queue, MessageClass = QueueMessage) {
  const consumer = config.consumers[queue] ?? { max_batch_size: 10, max_retries: 3, retry_delay: 0 };
  const ready = [...queueOf(queue).values()].filter((m) => m.visibleAt <= now).slice(0, consumer.max_batch_size);
  if (ready.length === 0) return false;
  const messages = ready.map((m) => {
    m.attempts += 1;
    m.visibleAt = Infinity;
    return new MessageClass(m);
  });
  const batch = new MessageBatch(queue, messages);
  let threw = null;
  try {
    await call("queue", batch);
  } catch (e) {
    threw = String(e);
  }
  const explicit = messages.map((m) => m.verdict());
  for (const m of messages) {
    if (threw === null) m.ack();
    else m.retry();
  }
  messages.forEach((m, index) => {
    const record = ready[index];
    const [kind, delay] = m.verdict();
    log.push({ queue, id: record.id, body: jsonable(deserialise(record)), attempts: record.attempts, verdict: [kind, delay], explicit: explicit[index] !== null, threw });
    if (kind === "ack") {
      queueOf(queue).delete(record.id);
    } else if (record.attempts > consumer.max_retries) {
      queueOf(queue).delete(record.id);
      if (consumer.dead_letter_queue) {
        queueOf(consumer.dead_letter_queue).set(record.id, { ...record, attempts: 0, visibleAt: now });
      }
    } else {
      record.visibleAt = now + (delay ?? consumer.retry_delay ?? 0);
    }
  });
  return { verdicts: explicit, threw };
}

async function drain(queue) {
  for (let i = 0; i < 50; i++) {
    if (!(await deliver(queue))) {
      const times = [...queueOf(queue).values()].map((m) => m.visibleAt);
      if (times.length === 0) return;
      now = Math.max(now, Math.min(...times));
    }
  }
  throw new Error(`queue ${queue} never drained`);
}

// Values for the driver's JSON: bytes as {bytes: [...]}, a BigInt as {bigint: "..."}.
function jsonable(value) {
  if (value instanceof ArrayBuffer) return { bytes: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) return { bytes: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  if (typeof value === "bigint") return { bigint: value.toString() };
  if (value instanceof Date) return { date: value.getTime() };
  if (Array.isArray(value)) return value.map(jsonable);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]));
  return value;
}

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if ("bytes" in value && Object.keys(value).length === 1) return Uint8Array.from(value.bytes);
    if ("bigint" in value && Object.keys(value).length === 1) return BigInt(value.bigint);
    if ("undefined" in value && Object.keys(value).length === 1) return undefined;
    if ("date" in value && Object.keys(value).length === 1) return new Date(value.date);
    if ("number" in value && Object.keys(value).length === 1) return Number(value.number);
    if ("map" in value && Object.keys(value).length === 1) return new Map(revive(value.map));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

function state() {
  const queues = {};
  for (const [name, messages] of stored) {
    queues[name] = [...messages.values()].map((m) => ({ contentType: m.contentType, body: jsonable(deserialise(m)), attempts: m.attempts }));
  }
  return { now, queues, log, sends };
}

const handlers = {
  async send({ queue, body, contentType, delaySeconds }) {
    const options = {};
    if (contentType !== undefined) options.contentType = contentType;
    if (delaySeconds !== undefined) options.delaySeconds = delaySeconds;
    await new WorkerQueue(queue).send(revive(body), options);
  },
  async deliver({ queue }) {
    return await deliver(queue);
  },
  async drain({ queue }) {
    await drain(queue);
  },
  async tamper({ queue, index, field, value }) {
    // One batch of `queue` whose message `index` reads `value` for `field` (a getter that
    // throws for {throws: message}): what a foreign producer or a broken runtime could hand in.
    let n = 0;
    const Tampered = class extends QueueMessage {
      constructor(s) {
        super(s);
        if (n++ !== index) return;
        if (value && typeof value === "object" && "throws" in value) {
          Object.defineProperty(this, field, { get() { throw new Error(value.throws); } });
        } else {
          Object.defineProperty(this, field, { value: revive(value) });
        }
      }
    };
    return await deliver(queue, Tampered);
  },
  async scheduled({ cron }) {
    await call("scheduled", new ScheduledController(cron));
  },
  async fail({ queue, count }) {
    failingSends[queue] = count;
  },
  async reset() {
    now = 0;
    stored.clear();
    log.length = 0;
    sends.length = 0;
    failingSends = {};
    driver.reset();
  },
  async python({ code }) {
    const namespace = driver.namespace();
    namespace.set("env", env());
    const result = await pyodide.runPythonAsync(code, { globals: namespace });
    return result === undefined ? null : JSON.parse(String(result));
  },
  async state() {
    return state();
  },
  async version() {
    const sys = pyodide.pyimport("sys");
    const pydantic = pyodide.pyimport("pydantic");
    return { pyodide: pyodide.version, python: sys.version.split(" ")[0], pydantic: pydantic.VERSION };
  },
};

const lines = readline.createInterface({ input: process.stdin });
const out = (answer) => process.stdout.write(JSON.stringify(answer) + "\n");
out({ ready: true });
for await (const line of lines) {
  const request = JSON.parse(line);
  try {
    const result = await handlers[request.op](request);
    out({ id: request.id, ok: true, result: result ?? null });
  } catch (e) {
    out({ id: request.id, ok: false, error: String(e?.stack ?? e) });
  }
}
process.exit(0);
