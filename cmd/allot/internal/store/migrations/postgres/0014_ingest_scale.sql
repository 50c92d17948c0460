-- Last seen and exposure deltas of known subjects (store.FoldTouches adds
-- them into first_exposures, many batches at once). Appended by the writer
-- instead of rewriting a first_exposures row per subject per batch; no
-- index, so an append costs no B-tree search. Readers of last_seen and
-- exposures fold first.
CREATE TABLE first_exposure_touches (
	environment  TEXT NOT NULL,
	feature_flag TEXT NOT NULL,
	allocation   TEXT NOT NULL,
	subject      TEXT NOT NULL,
	last_seen    BIGINT NOT NULL,
	exposures    BIGINT NOT NULL
);

-- The assignment table partitioned by UTC day (RANGE on timestamp, in
-- microseconds), so that retention drops a whole day's table instead of
-- deleting its rows one by one (store.DropAssignmentPartitionsBefore). The
-- writer creates a day's partition before its first event (and today's and
-- the next two days' ahead); events of days it does not create (older than
-- a month: see store.partitionWindow) go to the DEFAULT partition.
--
-- A unique key of a partitioned table must hold the partition key, so the
-- primary key is (event_id, timestamp): a retried event (same id, same
-- time) is still skipped; the same id with another time would be stored
-- twice here (SQLite keeps event_id alone unique).
--
-- What is stored moves into the new table in this migration.
ALTER TABLE assignments RENAME TO assignments_unpartitioned;
ALTER INDEX assignments_pkey RENAME TO assignments_unpartitioned_pkey;
ALTER INDEX assignments_by_experiment RENAME TO assignments_unpartitioned_by_experiment;
ALTER INDEX assignments_by_time RENAME TO assignments_unpartitioned_by_time;
ALTER INDEX assignments_by_seq RENAME TO assignments_unpartitioned_by_seq;
-- The event sequence carries over (sinks have sealed up to its values).
ALTER SEQUENCE assignments_seq_seq OWNED BY NONE;
CREATE TABLE assignments (
	event_id           TEXT NOT NULL,
	environment        TEXT NOT NULL,
	experiment         TEXT NOT NULL,
	feature_flag       TEXT NOT NULL,
	allocation         TEXT NOT NULL,
	variation          TEXT NOT NULL,
	subject            TEXT NOT NULL,
	subject_attributes TEXT NOT NULL DEFAULT '{}',
	timestamp          BIGINT NOT NULL,
	sdk_name           TEXT NOT NULL DEFAULT '',
	sdk_version        TEXT NOT NULL DEFAULT '',
	received_at        BIGINT NOT NULL,
	seq                BIGINT DEFAULT nextval('assignments_seq_seq'),
	holdout            TEXT NOT NULL DEFAULT '',
	holdout_variation  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (event_id, timestamp)
) PARTITION BY RANGE (timestamp);
ALTER SEQUENCE assignments_seq_seq OWNED BY assignments.seq;
CREATE INDEX assignments_by_experiment ON assignments (environment, feature_flag, timestamp);
CREATE INDEX assignments_by_time ON assignments (timestamp);
CREATE INDEX assignments_by_seq ON assignments (seq);
CREATE TABLE assignments_default PARTITION OF assignments DEFAULT;
-- One partition per day already holding events of the last 400 days (older
-- ones stay in the default partition), named like the writer's.
DO $$
DECLARE d BIGINT;
BEGIN
	FOR d IN SELECT DISTINCT floor(timestamp / 86400000000.0)::BIGINT FROM assignments_unpartitioned
		WHERE timestamp >= (floor(extract(epoch FROM now()))::BIGINT - 400 * 86400) * 1000000
	LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF assignments FOR VALUES FROM (%s) TO (%s)',
			'assignments_' || to_char(to_timestamp(d * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'), d * 86400000000, (d + 1) * 86400000000);
	END LOOP;
END
$$;
INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes,
	timestamp, sdk_name, sdk_version, received_at, seq, holdout, holdout_variation)
SELECT event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes,
	timestamp, sdk_name, sdk_version, received_at, seq, holdout, holdout_variation
FROM assignments_unpartitioned;
DROP TABLE assignments_unpartitioned;
