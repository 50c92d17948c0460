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

CREATE TRIGGER assignments_aggregate AFTER INSERT ON assignments BEGIN
	-- An event earlier than the subject's known first exposure moves it:
	-- take the old one out of its day first.
	UPDATE assignment_daily SET first_exposures = first_exposures - 1
	WHERE (environment, feature_flag, allocation, variation, day) IN (
		SELECT environment, feature_flag, allocation, first_variation, first_seen / 86400000000 FROM first_exposures
		WHERE environment = NEW.environment AND feature_flag = NEW.feature_flag AND allocation = NEW.allocation AND subject = NEW.subject
		  AND (NEW.timestamp < first_seen OR (NEW.timestamp = first_seen AND NEW.event_id < first_event_id)));
	-- A subject already in more than one variation leaves its bucket; it
	-- comes back below, under its (maybe earlier) first variation.
	UPDATE assignment_multiple SET subjects = subjects - 1
	WHERE (environment, feature_flag, allocation, first_variation) IN (
		SELECT environment, feature_flag, allocation, first_variation FROM first_exposures
		WHERE environment = NEW.environment AND feature_flag = NEW.feature_flag AND allocation = NEW.allocation AND subject = NEW.subject
		  AND multiple_variations = 1);
	INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
	VALUES (NEW.environment, NEW.feature_flag, NEW.allocation, NEW.subject, NEW.variation, NEW.event_id, NEW.timestamp, NEW.timestamp, 1, 0)
	ON CONFLICT (environment, feature_flag, allocation, subject) DO UPDATE SET
		multiple_variations = multiple_variations OR excluded.first_variation <> first_variation,
		first_variation = CASE WHEN excluded.first_seen < first_seen OR (excluded.first_seen = first_seen AND excluded.first_event_id < first_event_id) THEN excluded.first_variation ELSE first_variation END,
		first_event_id = CASE WHEN excluded.first_seen < first_seen OR (excluded.first_seen = first_seen AND excluded.first_event_id < first_event_id) THEN excluded.first_event_id ELSE first_event_id END,
		first_seen = min(first_seen, excluded.first_seen),
		last_seen = max(last_seen, excluded.last_seen),
		exposures = exposures + 1;
	INSERT INTO assignment_daily (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
	VALUES (NEW.environment, NEW.feature_flag, NEW.allocation, NEW.variation, NEW.timestamp / 86400000000, 1,
		(SELECT COUNT(*) FROM first_exposures WHERE environment = NEW.environment AND feature_flag = NEW.feature_flag
		   AND allocation = NEW.allocation AND subject = NEW.subject AND first_event_id = NEW.event_id))
	ON CONFLICT (environment, feature_flag, allocation, day, variation) DO UPDATE SET
		assignments = assignments + 1,
		first_exposures = first_exposures + excluded.first_exposures;
	INSERT INTO assignment_multiple (environment, feature_flag, allocation, first_variation, subjects)
	SELECT environment, feature_flag, allocation, first_variation, 1 FROM first_exposures
	WHERE environment = NEW.environment AND feature_flag = NEW.feature_flag AND allocation = NEW.allocation AND subject = NEW.subject
	  AND multiple_variations = 1
	ON CONFLICT (environment, feature_flag, allocation, first_variation) DO UPDATE SET subjects = subjects + 1;
END;

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
