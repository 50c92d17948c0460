-- Warehouse sinks (allot serve --sink): the last assignment sequence each
-- sink has sealed into files. A sink writes its files first, then records
-- here, so a crash between the two rewrites the same files on restart.
CREATE TABLE sinks (
	name       TEXT PRIMARY KEY,
	sealed     BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- The event sequence sinks read by. Rows already stored are numbered now
-- (in no particular order, once); new rows take the next value on insert.
-- Inserts commit out of sequence order across transactions, so a sink
-- takes its upper bound under a SHARE lock (see store.AssignmentHorizon).
-- Not NOT NULL: ingestion's staging table is CREATE TEMP TABLE ... (LIKE
-- assignments), which copies NOT NULL but not the default; every insert
-- into assignments names its columns, so seq always takes the default.
ALTER TABLE assignments ADD COLUMN seq BIGSERIAL;
ALTER TABLE assignments ALTER COLUMN seq DROP NOT NULL;
CREATE INDEX assignments_by_seq ON assignments (seq);
