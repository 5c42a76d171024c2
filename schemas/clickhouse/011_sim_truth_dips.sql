-- The simulator also records who only shops in store and who slumped and recovered (a dip),
-- so a report can say how many alerts went to customers who came back by themselves.
ALTER TABLE sim_truth ADD COLUMN IF NOT EXISTS in_store_only UInt8 DEFAULT 0;
ALTER TABLE sim_truth ADD COLUMN IF NOT EXISTS dip_from Nullable(DateTime64(3, 'UTC'));
ALTER TABLE sim_truth ADD COLUMN IF NOT EXISTS dip_to Nullable(DateTime64(3, 'UTC'));
