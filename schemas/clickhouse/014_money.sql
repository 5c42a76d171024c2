-- The money side of the B2B book (issue 14). Rows carry the lineage columns like every table.
CREATE TABLE IF NOT EXISTS rebate_estimates
(
    order_id        String,
    distributor_id  String,
    quarter         LowCardinality(String),
    estimate        Decimal(14, 2),
    lines           Array(String),
    rule_version    LowCardinality(String),
    as_of           DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (distributor_id, order_id);

-- Every change of a contract's colour (green, yellow, red, pending) with its reasons.
CREATE TABLE IF NOT EXISTS three_way_match
(
    contract_id     String,
    distributor_id  String,
    status          LowCardinality(String),
    status_zh       String,
    codes           Array(LowCardinality(String)),
    reasons         Array(String),
    order_amount    Nullable(Decimal(14, 2)),
    invoiced        Decimal(14, 2),
    paid            Decimal(14, 2),
    changed_at      DateTime64(3, 'UTC'),
    rules_version   LowCardinality(String),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (contract_id, changed_at, status);
