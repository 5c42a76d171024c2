-- The B2B sales pipeline (issue 13). Rows carry `version` = events folded into the account
-- so far: a replay writes the same version, ReplacingMergeTree keeps the latest.
CREATE TABLE IF NOT EXISTS crm_products
(
    product_line_id String,
    name            String,
    category        LowCardinality(String),
    registration_no String,
    list_price      Decimal(14, 2),
    launched_on     Nullable(Date),
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY product_line_id;

CREATE TABLE IF NOT EXISTS crm_reps
(
    rep_id          String,
    name            String,
    region          LowCardinality(String),
    started_on      Date,
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY rep_id;

CREATE TABLE IF NOT EXISTS crm_accounts
(
    account_id         String,
    name               String,
    region             LowCardinality(String),
    tier               LowCardinality(String),
    owner_rep_id       String,
    contacts           UInt32,
    decision_roles     Array(LowCardinality(String)),
    open_opportunities UInt32,
    grade              LowCardinality(String),
    grade_score        Float32,
    grade_reasons      Array(String),
    grading_version    LowCardinality(String),
    version            UInt64,
    kafka_topic        LowCardinality(String),
    kafka_partition    UInt16,
    kafka_offset       UInt64,
    stored_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY account_id;

CREATE TABLE IF NOT EXISTS crm_contacts
(
    contact_id      String,
    account_id      String,
    name            String,
    department      String,
    role            LowCardinality(String),
    phone_masked    String,
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64,
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, contact_id);

CREATE TABLE IF NOT EXISTS opportunities
(
    opportunity_id    String,
    account_id        String,
    account_name      String,
    region            LowCardinality(String),
    name              String,
    product_line_id   LowCardinality(String),
    rep_id            String,
    stage             LowCardinality(String),
    stage_since       DateTime64(3, 'UTC'),
    created_at        DateTime64(3, 'UTC'),
    updated_at        DateTime64(3, 'UTC'),
    last_activity_at  Nullable(DateTime64(3, 'UTC')),
    expected_amount   Decimal(14, 2),
    quote_amount      Nullable(Decimal(14, 2)),
    competitor        String,
    competitor_amount Nullable(Decimal(14, 2)),
    budget_deadline   Nullable(Date),
    next_step         String,
    activities        UInt32,
    demo_minutes      Float32,
    quality_demo      UInt8,
    survey_complete   UInt8,
    decision_roles    UInt8,
    intent_at         Nullable(DateTime64(3, 'UTC')),
    intent_title      String,
    followed_up_at    Nullable(DateTime64(3, 'UTC')),
    next_stage        LowCardinality(String),
    missing           Array(String),
    refusals          UInt32,
    closed_at         Nullable(DateTime64(3, 'UTC')),
    rule_version      LowCardinality(String),
    version           UInt64,
    kafka_topic       LowCardinality(String),
    kafka_partition   UInt16,
    kafka_offset      UInt64,
    stored_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY opportunity_id;

-- Every stage move and every refusal: who asked, when, from, to, under which rule version, why.
CREATE TABLE IF NOT EXISTS opportunity_audit
(
    decision_id     String,
    opportunity_id  String,
    account_id      String,
    rep_id          String,
    requested_by    String,
    requested_at    DateTime64(3, 'UTC'),
    from_stage      LowCardinality(String),
    to_stage        LowCardinality(String),
    decision        LowCardinality(String),
    missing         Array(String),
    missing_codes   Array(LowCardinality(String)),
    reason          String,
    request_reason  String,
    rule_version    LowCardinality(String),
    decided_at      DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY decision_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS deal_activities
(
    activity_id        String,
    opportunity_id     String,
    account_id         String,
    rep_id             String,
    region             LowCardinality(String),
    kind               LowCardinality(String),
    occurred_at        DateTime64(3, 'UTC'),
    logged_at          DateTime64(3, 'UTC'),
    delay_hours        Float32,
    late               UInt8,
    duration_minutes   Float32,
    custom_pages_shown UInt8,
    quality_demo       UInt8,
    stage              LowCardinality(String),
    kafka_topic        LowCardinality(String),
    kafka_partition    UInt16,
    kafka_offset       UInt64,
    stored_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY activity_id
SETTINGS non_replicated_deduplication_window = 1000;

-- High-intent pushes to a deal's rep (delivered by serve's notifier like alerts).
CREATE TABLE IF NOT EXISTS deal_pushes
(
    push_id          String,
    kind             LowCardinality(String),
    opportunity_id   String,
    account_id       String,
    rep_id           String,
    title            String,
    conversation     Array(String),
    competitor_quote String,
    raised_at        DateTime64(3, 'UTC'),
    severity         LowCardinality(String),
    kafka_topic      LowCardinality(String),
    kafka_partition  UInt16,
    kafka_offset     UInt64,
    stored_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY push_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Each rep's TOP-3 deals of a business day (Asia/Shanghai), ranked by close probability x urgency.
CREATE TABLE IF NOT EXISTS rep_top3
(
    day             Date,
    rep_id          String,
    rank            UInt8,
    opportunity_id  String,
    name            String,
    account_name    String,
    stage           LowCardinality(String),
    probability     Float32,
    urgency         Float32,
    priority        Float32,
    factors         Array(String),
    urgent_because  Array(String),
    model_version   LowCardinality(String),
    computed_at     DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt16,
    kafka_offset    UInt64,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (day, rep_id, rank);

-- Ground truth of the simulated B2B book: how each deal really ends, never from real traffic.
CREATE TABLE IF NOT EXISTS sim_deal_truth
(
    opportunity_id String,
    rep_id         String,
    outcome        LowCardinality(String),
    closes_at      Nullable(DateTime64(3, 'UTC')),
    skips_gates    UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY opportunity_id;
