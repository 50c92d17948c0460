-- The aggregates are now kept by the insert path in Go (store.updateAggregates:
-- per batch, from the rows actually inserted, one multi-row upsert per
-- aggregate table), in the inserting transaction as before. The per-row
-- trigger ran six statements per event and cost most of the ingestion rate.
DROP TRIGGER assignments_aggregate;
