-- Holdout columns in the first-exposure table (issue 14, item 2): the
-- holdout of the subject's first exposure, taken from that event's row of
-- the assignment table ('' outside holdouts), so an analysis joining
-- against first_exposures knows which subjects a holdout kept out. Its half
-- is first_holdout_variation (migration 0012). The insert path keeps both
-- with first_variation (store.planAggregates).
ALTER TABLE first_exposures ADD COLUMN holdout TEXT NOT NULL DEFAULT '';

-- What is already stored: the rebuild (store.RebuildAggregates) runs this
-- statement too, after 0012's, so the two cannot drift apart. It walks
-- first_exposures and probes the event_id key (a correlated subquery, so no
-- planner can drive it from assignments with a scan of first_exposures per
-- row). Only subjects first seen in a holdout are written.
UPDATE first_exposures SET
	holdout = COALESCE((SELECT a.holdout FROM assignments a WHERE a.event_id = first_exposures.first_event_id), '')
WHERE EXISTS (SELECT 1 FROM assignments a WHERE a.event_id = first_exposures.first_event_id AND a.holdout <> '');
