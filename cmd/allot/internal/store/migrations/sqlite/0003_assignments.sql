-- Assignment events collected from SDKs: the assignment table.
-- event_id makes ingestion idempotent: a retried batch adds nothing.
-- Times are Unix microseconds, like every other table.
CREATE TABLE assignments (
	event_id           TEXT PRIMARY KEY,
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
	received_at        BIGINT NOT NULL
);

CREATE INDEX assignments_by_experiment ON assignments (environment, feature_flag, timestamp);
CREATE INDEX assignments_by_time ON assignments (timestamp);
