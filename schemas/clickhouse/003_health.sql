-- Customer health: the current score per customer (upserted) and every change with its reasons.
CREATE TABLE IF NOT EXISTS customer_health
(
    customer_id     String,
    segment         LowCardinality(String),
    score           Float32,
    band            LowCardinality(String),
    trend_7d        Nullable(Float32),
    confidence      Float32,
    stale_sources   Array(String),
    components      String,
    reasons         Array(String),
    fresh           String,
    as_of           DateTime64(3, 'UTC'),
    version         UInt64,
    updated_at      DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
SETTINGS non_replicated_deduplication_window = 1000;

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
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(as_of)
ORDER BY (customer_id, version)
SETTINGS non_replicated_deduplication_window = 1000;
