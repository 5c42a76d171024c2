-- One row per alert and channel: delivered, or failed after all attempts (kept, visible).
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id        String,
    channel         LowCardinality(String),
    status          LowCardinality(String),
    attempts        UInt16,
    last_error      String,
    finished_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, channel, finished_at)
SETTINGS non_replicated_deduplication_window = 1000;
