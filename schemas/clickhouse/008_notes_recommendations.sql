-- Notes -> tags (one row per note, tags as parallel arrays with their character spans),
-- the per-customer tag profile (weight as of as_of; decay by half_life_days on read) and
-- stock-aware recommendations (one row per item, with reasons and the notes behind them).
CREATE TABLE IF NOT EXISTS note_tags
(
    note_id         String,
    event_id        String,
    customer_id     String,
    store_id        String,
    associate_id    String,
    occurred_at     DateTime64(3, 'UTC'),
    text            String,
    tags            Array(String),
    tag_types       Array(LowCardinality(String)),
    starts          Array(UInt16),
    ends            Array(UInt16),
    surfaces        Array(String),
    weights         Array(Float32),
    tagger          LowCardinality(String),
    tagged_at       DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY note_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS customer_tags
(
    customer_id     String,
    tag             String,
    tag_type        LowCardinality(String),
    value           String,
    weight          Float32,
    as_of           DateTime64(3, 'UTC'),
    half_life_days  Float32,
    note_ids        Array(String),
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, tag)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS recommendations
(
    recommendation_id String,
    request_id      String,
    customer_id     String,
    store_id        String,
    visit_type      LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    rank            UInt8,
    personalised    Bool,
    message         String,
    kind            LowCardinality(String),
    sku             String,
    name            String,
    category        String,
    size            String,
    colour          String,
    on_hand         Int32,
    reasons         Array(String),
    source_notes    Array(String),
    created_at      DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (store_id, customer_id, recommendation_id)
SETTINGS non_replicated_deduplication_window = 1000;
