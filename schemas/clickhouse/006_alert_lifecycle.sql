-- Alert lifecycle: who acknowledged/resolved and when, the weekly contact cap and quiet hours.
-- No DEFAULT expressions: the worker writes every column (the sink leaves DEFAULT columns to ClickHouse).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS suppressed_reason String AFTER status;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS notify_after DateTime64(3, 'UTC') AFTER raised_at;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_by String AFTER notify_after;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_at Nullable(DateTime64(3, 'UTC')) AFTER acknowledged_by;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolved_by String AFTER acknowledged_at;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolved_at Nullable(DateTime64(3, 'UTC')) AFTER resolved_by;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS note String AFTER resolved_at;
