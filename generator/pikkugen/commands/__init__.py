"""The `pikkugen` commands, one module each with a `register(app)`: `scan` (scan, list, watch,
client: generate time), `worker`, `enqueue`, `dlq`, `monitor` (run time). The run-time ones
share `project` (config, registry, backend, error lines); `worker` adds `display`."""
