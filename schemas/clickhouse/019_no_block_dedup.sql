-- Block deduplication off on every result table. The sink's ledger decides what is stored;
-- ClickHouse's window dropped, without a word, a re-insert identical to a block inserted
-- before: after a repair deleted the rows of a flush that did not finish, reading them again
-- stored nothing (settings insert_deduplicate=0 on the insert did not stop it on this engine).
ALTER TABLE events MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE customers MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE dead_letters MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE customer_health MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE customer_health_history MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE alerts MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE alert_deliveries MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE note_tags MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE customer_tags MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE recommendations MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE opportunity_audit MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE deal_activities MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE deal_pushes MODIFY SETTING non_replicated_deduplication_window = 0;
