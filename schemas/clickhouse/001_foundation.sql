-- Foundation tables. Column names are a public contract (README "ClickHouse tables").
-- kafka_topic/kafka_partition/kafka_offset record which result-topic message each row
-- came from: the sink skips anything at or below the stored maximum, so a batch replayed
-- after a crash is never stored twice.

CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    event_type      LowCardinality(String),
    schema_version  UInt16,
    occurred_at     DateTime64(3, 'UTC'),
    ingested_at     DateTime64(3, 'UTC'),
    source          LowCardinality(String),
    store_id        String,
    customer_id     String,
    payload         String,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS customers
(
    customer_id        String,
    segment            LowCardinality(String),
    member_no          String,
    phone_masked       String,
    phone_hmac         String,
    first_store_id     String,
    first_seen_at      DateTime64(3, 'UTC'),
    last_seen_at       DateTime64(3, 'UTC'),
    created_by         LowCardinality(String),
    is_key_contact     UInt8,
    consent_marketing  UInt8,
    opted_out          UInt8,
    version            UInt64,
    updated_at         DateTime64(3, 'UTC'),
    kafka_topic        LowCardinality(String),
    kafka_partition    UInt16,
    kafka_offset       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    stage            LowCardinality(String),
    error_class      LowCardinality(String),
    error_message    String,
    event_id         String,
    raw_payload      String,
    raw_size         UInt32,
    raw_truncated    UInt8,
    headers          String,
    failed_at        DateTime64(3, 'UTC'),
    kafka_topic      LowCardinality(String),
    kafka_partition  UInt16,
    kafka_offset     UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (source_topic, source_partition, source_offset, stage)
SETTINGS non_replicated_deduplication_window = 1000;
