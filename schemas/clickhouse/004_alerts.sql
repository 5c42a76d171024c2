-- Alerts raised by the rules in pipeline/data/alerts.yaml. alert_id is deterministic
-- (customer, rule, event-time day), so a replay collapses onto the same row; later
-- lifecycle changes (acknowledged, resolved) are new versions of it.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id        String,
    customer_id     String,
    rule_id         LowCardinality(String),
    severity        LowCardinality(String),
    title           String,
    score           Float32,
    band            LowCardinality(String),
    assignee        String,
    status          LowCardinality(String),
    raised_at       DateTime64(3, 'UTC'),
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;
