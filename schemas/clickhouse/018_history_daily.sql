-- The health history becomes the close of each business day (Asia/Shanghai): one row per
-- customer and day on which the score moved a point or changed band, as of the day's last
-- scored event. Rows used to be one per settle, keyed by a per-settle version, so how a backlog
-- was cut into batches (a restart cuts it elsewhere) changed which rows existed. The sorting
-- key cannot change in place: the old table is renamed, its rows copied (the last of each day
-- stands for that day), then dropped.
RENAME TABLE customer_health_history TO customer_health_history_017;

CREATE TABLE customer_health_history
(
    customer_id     String,
    day             Date,
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
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (customer_id, day)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO customer_health_history
SELECT customer_id, toDate(as_of, 'Asia/Shanghai') AS day, segment, score, previous_score, band, previous_band,
       confidence, reasons, as_of, version, kafka_topic, kafka_partition, kafka_offset, stored_at
FROM customer_health_history_017 FINAL;

DROP TABLE customer_health_history_017;
