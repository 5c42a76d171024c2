-- The money side's facts (issue 14): order lines, payments credited to reps, deliveries,
-- service tickets and reps' forecasts, for deliverable value, forecast accuracy and tender
-- evidence; and the rebate statement lines. Rows carry the lineage columns like every table.
-- version: the distributor's fold count when the row was written (a replay writes the same
-- one), so the latest content wins whatever order the sink stores rows in.

-- One row per order line. deliverable = not a repeat order of an existing customer, scheduled
-- for production and paid in cash (可交付新签额).
CREATE TABLE IF NOT EXISTS money_orders
(
    order_id                 String,
    line_no                  UInt16,
    contract_id              String,
    distributor_id           String,
    hospital_account_id      String,
    opportunity_id           String,
    rep_id                   String,
    region                   LowCardinality(String),
    product_line_id          LowCardinality(String),
    qty                      UInt32,
    amount                   Decimal(14, 2),
    repeat_customer          UInt8,
    scheduled_for_production UInt8,
    cash                     UInt8,
    deliverable              UInt8,
    new_product              UInt8,
    ordered_at               DateTime64(3, 'UTC'),
    promised_delivery        Date,
    version                  UInt64,
    kafka_topic              LowCardinality(String),
    kafka_partition          UInt16,
    kafka_offset             UInt64,
    stored_at                DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (order_id, line_no);

-- Collections, credited to the rep and region of the contract's order ('' until it is known;
-- the row is written again when the order comes).
CREATE TABLE IF NOT EXISTS money_payments
(
    payment_id      String,
    contract_id     String,
    invoice_id      String,
    distributor_id  String,
    rep_id          String,
    region          LowCardinality(String),
    amount          Decimal(14, 2),
    paid_at         DateTime64(3, 'UTC'),
    version                  UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY payment_id;

CREATE TABLE IF NOT EXISTS deliveries
(
    delivery_id         String,
    contract_id         String,
    distributor_id      String,
    hospital_account_id String,
    rep_id              String,
    region              LowCardinality(String),
    promised_on         Date,
    delivered_on        Date,
    days_late           Int32,
    on_time             UInt8,
    delivered_at        DateTime64(3, 'UTC'),
    version                  UInt64,
    kafka_topic         LowCardinality(String),
    kafka_partition     UInt16,
    kafka_offset        UInt64,
    stored_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY delivery_id;

CREATE TABLE IF NOT EXISTS service_tickets
(
    ticket_id           String,
    step                LowCardinality(String),
    hospital_account_id String,
    product_line_id     LowCardinality(String),
    distributor_id      String,
    at                  DateTime64(3, 'UTC'),
    kafka_topic         LowCardinality(String),
    kafka_partition     UInt16,
    kafka_offset        UInt64,
    stored_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
ORDER BY (ticket_id, step);

CREATE TABLE IF NOT EXISTS money_forecasts
(
    forecast_id     String,
    rep_id          String,
    region          LowCardinality(String),
    amount          Decimal(14, 2),
    horizon_days    UInt16,
    made_at         DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
ORDER BY forecast_id;

-- A distributor's monthly rebate statement: the quarter to the month's end, one line per rule,
-- rewritten whenever an event of that quarter moves it; the latest (as_of) is the statement.
CREATE TABLE IF NOT EXISTS rebate_lines
(
    distributor_id  String,
    month           LowCardinality(String),
    quarter         LowCardinality(String),
    line_no         UInt16,
    rule            LowCardinality(String),
    title           String,
    base            Decimal(14, 2),
    rate            Nullable(Decimal(9, 6)),
    amount          Decimal(14, 2),
    met             UInt8,
    rule_version    LowCardinality(String),
    inputs          String,
    as_of           DateTime64(3, 'UTC'),
    version                  UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (distributor_id, month, rule);

ALTER TABLE three_way_match ADD COLUMN IF NOT EXISTS rep_id String AFTER distributor_id;
ALTER TABLE three_way_match ADD COLUMN IF NOT EXISTS region LowCardinality(String) AFTER rep_id;
ALTER TABLE three_way_match ADD COLUMN IF NOT EXISTS hospital_account_id String AFTER region
