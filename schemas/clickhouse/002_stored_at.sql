-- When the sink stored the row (server clock): freshness for ops, event-to-row latency for
-- benchmarks. Filled by ClickHouse, never by the sink.
ALTER TABLE events ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3);
ALTER TABLE customers ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3);
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3);
