IMAGE_TIMEOUT_MS = 300_000
DLQ = "image-processing-dlq"
