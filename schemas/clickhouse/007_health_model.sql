-- Which score a row carries: the rule-based one, or a trained churn model's (with its probability).
ALTER TABLE customer_health ADD COLUMN IF NOT EXISTS churn_risk Nullable(Float32) AFTER reasons;
ALTER TABLE customer_health ADD COLUMN IF NOT EXISTS score_source LowCardinality(String) AFTER churn_risk;
