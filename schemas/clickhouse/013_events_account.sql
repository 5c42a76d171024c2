-- CRM events name their account (the key of the deals agent): kept on the event row so the
-- stored history can be replayed per account (`salespulse deals train`). '' for other events.
ALTER TABLE events ADD COLUMN IF NOT EXISTS account_id String AFTER customer_id;
