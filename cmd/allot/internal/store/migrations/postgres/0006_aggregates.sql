-- Aggregates of the assignment table, maintained as events are inserted (in
-- the same transaction, by the trigger below, so only rows actually inserted
-- count: a retried event id adds nothing) and rebuilt from the raw table by
-- `allot tables rebuild`. The summary reads only these.
-- Days are UTC days: timestamp / 86400000000.

-- One row per subject and allocation: the first exposure (the earliest
-- event, ties broken by event id, so the answer does not depend on the order
-- events arrive), first and last seen, how many exposures, and whether the
-- subject was seen in more than one variation.
CREATE TABLE first_exposures (
	environment         TEXT NOT NULL,
	feature_flag        TEXT NOT NULL,
	allocation          TEXT NOT NULL,
	subject             TEXT NOT NULL,
	first_variation     TEXT NOT NULL,
	first_event_id      TEXT NOT NULL,
	first_seen          BIGINT NOT NULL,
	last_seen           BIGINT NOT NULL,
	exposures           BIGINT NOT NULL,
	multiple_variations INTEGER NOT NULL,
	PRIMARY KEY (environment, feature_flag, allocation, subject)
);

-- Per allocation, variation and day: assignments, and subjects whose first
-- exposure fell on that day in that variation.
CREATE TABLE assignment_daily (
	environment     TEXT NOT NULL,
	feature_flag    TEXT NOT NULL,
	allocation      TEXT NOT NULL,
	variation       TEXT NOT NULL,
	day             BIGINT NOT NULL,
	assignments     BIGINT NOT NULL,
	first_exposures BIGINT NOT NULL,
	PRIMARY KEY (environment, feature_flag, allocation, day, variation)
);

-- Per allocation and first variation: the subjects seen in more than one
-- variation. With assignment_daily it answers the summary without reading
-- first_exposures (whose size grows with the subjects): the subjects of a
-- variation are its first exposures summed over days, minus these.
CREATE TABLE assignment_multiple (
	environment     TEXT NOT NULL,
	feature_flag    TEXT NOT NULL,
	allocation      TEXT NOT NULL,
	first_variation TEXT NOT NULL,
	subjects        BIGINT NOT NULL,
	PRIMARY KEY (environment, feature_flag, allocation, first_variation)
);

-- One statement-level trigger per INSERT or COPY: it sees the rows actually
-- inserted (ON CONFLICT DO NOTHING leaves retried ones out) as a transition
-- table and folds them in set-wise, a handful of statements per batch.
CREATE FUNCTION assignments_aggregate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS aggregate_batch (
		environment TEXT, feature_flag TEXT, allocation TEXT, subject TEXT,
		first_variation TEXT, first_event_id TEXT, first_seen BIGINT, last_seen BIGINT,
		exposures BIGINT, variations BIGINT) ON COMMIT DELETE ROWS;
	-- DELETE, not TRUNCATE: on a table this small it is far cheaper (no
	-- new file), and a second statement in one transaction starts empty.
	DELETE FROM aggregate_batch;
	INSERT INTO aggregate_batch
	SELECT r.environment, r.feature_flag, r.allocation, r.subject, r.variation, r.event_id, r.timestamp, p.last_seen, p.exposures, p.variations
	FROM (SELECT environment, feature_flag, allocation, subject, variation, event_id, timestamp,
			ROW_NUMBER() OVER (PARTITION BY environment, feature_flag, allocation, subject ORDER BY timestamp, event_id) AS rn
		FROM new_rows) r
	JOIN (SELECT environment, feature_flag, allocation, subject, MAX(timestamp) AS last_seen, COUNT(*) AS exposures,
			COUNT(DISTINCT variation) AS variations
		FROM new_rows GROUP BY environment, feature_flag, allocation, subject) p
	  ON p.environment = r.environment AND p.feature_flag = r.feature_flag AND p.allocation = r.allocation AND p.subject = r.subject
	WHERE r.rn = 1;

	-- Subjects whose first exposure moves earlier: take the old one out of its day.
	UPDATE assignment_daily d SET first_exposures = d.first_exposures - m.n
	FROM (SELECT f.environment, f.feature_flag, f.allocation, f.first_variation, f.first_seen / 86400000000 AS day, COUNT(*) AS n
		FROM first_exposures f JOIN aggregate_batch b
		  ON b.environment = f.environment AND b.feature_flag = f.feature_flag AND b.allocation = f.allocation AND b.subject = f.subject
		WHERE (b.first_seen, b.first_event_id) < (f.first_seen, f.first_event_id)
		GROUP BY 1, 2, 3, 4, 5) m
	WHERE d.environment = m.environment AND d.feature_flag = m.feature_flag AND d.allocation = m.allocation
	  AND d.variation = m.first_variation AND d.day = m.day;

	-- Subjects already in more than one variation leave their bucket; they
	-- come back below, under their (maybe earlier) first variation.
	UPDATE assignment_multiple m SET subjects = m.subjects - x.n
	FROM (SELECT f.environment, f.feature_flag, f.allocation, f.first_variation, COUNT(*) AS n
		FROM first_exposures f JOIN aggregate_batch b
		  ON b.environment = f.environment AND b.feature_flag = f.feature_flag AND b.allocation = f.allocation AND b.subject = f.subject
		WHERE f.multiple_variations = 1
		GROUP BY 1, 2, 3, 4) x
	WHERE m.environment = x.environment AND m.feature_flag = x.feature_flag AND m.allocation = x.allocation
	  AND m.first_variation = x.first_variation;

	INSERT INTO first_exposures AS f (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
	SELECT environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures,
		CASE WHEN variations > 1 THEN 1 ELSE 0 END
	FROM aggregate_batch
	ON CONFLICT (environment, feature_flag, allocation, subject) DO UPDATE SET
		multiple_variations = CASE WHEN f.multiple_variations = 1 OR excluded.multiple_variations = 1
			OR excluded.first_variation <> f.first_variation THEN 1 ELSE 0 END,
		first_variation = CASE WHEN (excluded.first_seen, excluded.first_event_id) < (f.first_seen, f.first_event_id) THEN excluded.first_variation ELSE f.first_variation END,
		first_event_id = CASE WHEN (excluded.first_seen, excluded.first_event_id) < (f.first_seen, f.first_event_id) THEN excluded.first_event_id ELSE f.first_event_id END,
		first_seen = LEAST(f.first_seen, excluded.first_seen),
		last_seen = GREATEST(f.last_seen, excluded.last_seen),
		exposures = f.exposures + excluded.exposures;

	INSERT INTO assignment_daily AS d (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
	SELECT environment, feature_flag, allocation, variation, day, SUM(a), SUM(fe) FROM (
		SELECT environment, feature_flag, allocation, variation, timestamp / 86400000000 AS day, 1 AS a, 0 AS fe FROM new_rows
		UNION ALL
		-- The batch's first events that are now the subject's first exposure.
		SELECT b.environment, b.feature_flag, b.allocation, b.first_variation, b.first_seen / 86400000000, 0, 1
		FROM aggregate_batch b JOIN first_exposures f
		  ON f.environment = b.environment AND f.feature_flag = b.feature_flag AND f.allocation = b.allocation AND f.subject = b.subject
		WHERE f.first_event_id = b.first_event_id
	) u GROUP BY environment, feature_flag, allocation, variation, day
	ON CONFLICT (environment, feature_flag, allocation, day, variation) DO UPDATE SET
		assignments = d.assignments + excluded.assignments,
		first_exposures = d.first_exposures + excluded.first_exposures;

	INSERT INTO assignment_multiple AS m (environment, feature_flag, allocation, first_variation, subjects)
	SELECT f.environment, f.feature_flag, f.allocation, f.first_variation, COUNT(*)
	FROM first_exposures f JOIN aggregate_batch b
	  ON b.environment = f.environment AND b.feature_flag = f.feature_flag AND b.allocation = f.allocation AND b.subject = f.subject
	WHERE f.multiple_variations = 1
	GROUP BY 1, 2, 3, 4
	ON CONFLICT (environment, feature_flag, allocation, first_variation) DO UPDATE SET subjects = m.subjects + excluded.subjects;
	RETURN NULL;
END
$$;

CREATE TRIGGER assignments_aggregate AFTER INSERT ON assignments
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assignments_aggregate();

-- What is already stored counts too (the same statements as
-- store.RebuildAggregates: one pass each, no per-subject lookups).
INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
SELECT r.environment, r.feature_flag, r.allocation, r.subject, r.variation, r.event_id, r.timestamp, p.last_seen, p.exposures, p.multiple
FROM (SELECT environment, feature_flag, allocation, subject, variation, event_id, timestamp,
		ROW_NUMBER() OVER (PARTITION BY environment, feature_flag, allocation, subject ORDER BY timestamp, event_id) AS rn
	FROM assignments) r
JOIN (SELECT environment, feature_flag, allocation, subject, MAX(timestamp) AS last_seen, COUNT(*) AS exposures,
		CASE WHEN COUNT(DISTINCT variation) > 1 THEN 1 ELSE 0 END AS multiple
	FROM assignments GROUP BY environment, feature_flag, allocation, subject) p
  ON p.environment = r.environment AND p.feature_flag = r.feature_flag AND p.allocation = r.allocation AND p.subject = r.subject
WHERE r.rn = 1;
INSERT INTO assignment_daily (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
SELECT environment, feature_flag, allocation, variation, day, SUM(a), SUM(f) FROM (
	SELECT environment, feature_flag, allocation, variation, timestamp / 86400000000 AS day, 1 AS a, 0 AS f FROM assignments
	UNION ALL
	SELECT environment, feature_flag, allocation, first_variation, first_seen / 86400000000, 0, 1 FROM first_exposures
) u GROUP BY environment, feature_flag, allocation, variation, day;
INSERT INTO assignment_multiple (environment, feature_flag, allocation, first_variation, subjects)
SELECT environment, feature_flag, allocation, first_variation, COUNT(*) FROM first_exposures
WHERE multiple_variations = 1 GROUP BY environment, feature_flag, allocation, first_variation;
