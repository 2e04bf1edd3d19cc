"""Getting messages out: the durable outbox and its dispatcher (rate limits, retries, exactly-once
records), and the replay guard for inbound requests."""
