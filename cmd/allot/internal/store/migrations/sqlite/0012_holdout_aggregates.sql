-- Per-holdout summaries (issue 15): the aggregates keep the holdout half of
-- each assignment (assignments.holdout_variation: 'status_quo',
-- 'all_shipped', or '' outside holdouts), so that a holdout allocation's
-- summary and sample ratio check can be read per half without the raw
-- table. Before a winner ships both halves get the same variation, so the
-- variation alone cannot tell them apart.
--
-- A subject's first exposure keeps the half of its first event; the daily
-- rows and the multiple-variation counts are keyed by it. The tables are
-- recomputed from the raw table below, as `allot tables rebuild` does.
ALTER TABLE first_exposures ADD COLUMN first_holdout_variation TEXT NOT NULL DEFAULT '';
DELETE FROM first_exposures;
DROP TABLE assignment_daily;
CREATE TABLE assignment_daily (
	environment       TEXT NOT NULL,
	feature_flag      TEXT NOT NULL,
	allocation        TEXT NOT NULL,
	variation         TEXT NOT NULL,
	holdout_variation TEXT NOT NULL DEFAULT '',
	day               BIGINT NOT NULL,
	assignments       BIGINT NOT NULL,
	first_exposures   BIGINT NOT NULL,
	PRIMARY KEY (environment, feature_flag, allocation, day, variation, holdout_variation)
);
DROP TABLE assignment_multiple;
CREATE TABLE assignment_multiple (
	environment       TEXT NOT NULL,
	feature_flag      TEXT NOT NULL,
	allocation        TEXT NOT NULL,
	first_variation   TEXT NOT NULL,
	holdout_variation TEXT NOT NULL DEFAULT '',
	subjects          BIGINT NOT NULL,
	PRIMARY KEY (environment, feature_flag, allocation, first_variation, holdout_variation)
);

-- What is already stored counts (the statements store.RebuildAggregates
-- runs, after emptying the three tables: one pass each, no per-subject
-- lookups).
INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations, first_holdout_variation)
SELECT r.environment, r.feature_flag, r.allocation, r.subject, r.variation, r.event_id, r.timestamp, p.last_seen, p.exposures, p.multiple, r.holdout_variation
FROM (SELECT environment, feature_flag, allocation, subject, variation, event_id, timestamp, holdout_variation,
		ROW_NUMBER() OVER (PARTITION BY environment, feature_flag, allocation, subject ORDER BY timestamp, event_id) AS rn
	FROM assignments) r
JOIN (SELECT environment, feature_flag, allocation, subject, MAX(timestamp) AS last_seen, COUNT(*) AS exposures,
		CASE WHEN COUNT(DISTINCT variation) > 1 THEN 1 ELSE 0 END AS multiple
	FROM assignments GROUP BY environment, feature_flag, allocation, subject) p
  ON p.environment = r.environment AND p.feature_flag = r.feature_flag AND p.allocation = r.allocation AND p.subject = r.subject
WHERE r.rn = 1;
INSERT INTO assignment_daily (environment, feature_flag, allocation, variation, holdout_variation, day, assignments, first_exposures)
SELECT environment, feature_flag, allocation, variation, holdout_variation, day, SUM(a), SUM(f) FROM (
	SELECT environment, feature_flag, allocation, variation, holdout_variation, timestamp / 86400000000 AS day, 1 AS a, 0 AS f FROM assignments
	UNION ALL
	SELECT environment, feature_flag, allocation, first_variation, first_holdout_variation, first_seen / 86400000000, 0, 1 FROM first_exposures
) u GROUP BY environment, feature_flag, allocation, variation, holdout_variation, day;
INSERT INTO assignment_multiple (environment, feature_flag, allocation, first_variation, holdout_variation, subjects)
SELECT environment, feature_flag, allocation, first_variation, first_holdout_variation, COUNT(*) FROM first_exposures
WHERE multiple_variations = 1 GROUP BY environment, feature_flag, allocation, first_variation, first_holdout_variation;
