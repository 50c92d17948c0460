-- Warehouse sinks (allot serve --sink): the last assignment sequence each
-- sink has sealed into files. On SQLite the sequence is the assignments
-- table's rowid: one writer at a time, so every rowid up to the largest
-- visible one is committed. A sink writes its files first, then records
-- here, so a crash between the two rewrites the same files on restart.
CREATE TABLE sinks (
	name       TEXT PRIMARY KEY,
	sealed     BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
