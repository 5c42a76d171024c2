-- Ground truth of a simulated run (`salespulse demo`, `salespulse simulate --truth`): for
-- every simulated customer whether and when they churned. Never written from real traffic;
-- `salespulse alerts report` judges alert rules against it (precision, recall, lead time).
CREATE TABLE IF NOT EXISTS sim_truth
(
    customer_id String,
    segment LowCardinality(String),
    key_contact UInt8,
    churn_at Nullable(DateTime64(3, 'UTC')),
    engagement Float32
)
ENGINE = ReplacingMergeTree
ORDER BY customer_id;
