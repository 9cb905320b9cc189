"""Per-runtime generator plugins: one package per runtime (emitters and generate-time checks)."""
