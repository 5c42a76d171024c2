-- customer_health_history becomes one row per customer and business day: the score after the
-- customer's last event of that day (the highest version wins), explained against the previous
-- active day. The old table held a row per settle that moved the score, which depended on how
-- events were batched; it is kept, renamed, for whoever reads it.
RENAME TABLE IF EXISTS customer_health_history TO customer_health_history_by_batch;

CREATE TABLE IF NOT EXISTS customer_health_history
(
    customer_id     String,
    segment         LowCardinality(String),
    score           Float32,
    previous_score  Nullable(Float32),
    band            LowCardinality(String),
    previous_band   String,
    confidence      Float32,
    reasons         Array(String),
    as_of           DateTime64(3, 'UTC'),
    day             Date,
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (customer_id, day)
SETTINGS non_replicated_deduplication_window = 1000;
