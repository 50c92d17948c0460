-- The aggregates are now kept by the insert path in Go (store.updateAggregates:
-- per batch, from the rows actually inserted, one multi-row upsert per
-- aggregate table), in the inserting transaction as before. The statement
-- trigger (a temporary table and a handful of joins per batch) cost about
-- two thirds of the ingestion rate.
DROP TRIGGER assignments_aggregate ON assignments;
DROP FUNCTION assignments_aggregate();
