-- The sink's ledger: per result topic-partition, the last message whose rows, dead letters
-- and all are stored. Written after every flush and before the Kafka commit; at start-up
-- and after a failed flush the sink deletes rows above it (a half-done insert) and reads on
-- from it, so a row is stored once without FINAL. A row with an empty topic marks a ledger
-- in use (a store from before the ledger has none: its highest stored offsets stand).
CREATE TABLE IF NOT EXISTS sink_offsets
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset Int64,
    stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (kafka_topic, kafka_partition);
