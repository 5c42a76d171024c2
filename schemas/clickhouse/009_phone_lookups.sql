-- Every search by a full mobile number: who asked, when, and whether it found someone.
-- The number itself is never stored (not even its token): the row is the audit, and the
-- count of a key's rows today is its quota.
CREATE TABLE IF NOT EXISTS phone_lookups
(
    key_id String,
    name String,
    role LowCardinality(String),
    at DateTime64(3, 'UTC'),
    day Date,  -- Asia/Shanghai business day of `at`: the quota resets at midnight China time
    hit UInt8,
    results UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (key_id, at);
