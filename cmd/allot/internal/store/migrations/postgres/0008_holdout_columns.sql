-- Holdouts (issue 15): the holdout whose allocation assigned the subject
-- (the split's extraLogging holdoutKey) and its half ('status_quo' or
-- 'all_shipped'); '' for assignments outside any holdout, which is every
-- row stored before this migration.
ALTER TABLE assignments ADD COLUMN holdout TEXT NOT NULL DEFAULT '';
ALTER TABLE assignments ADD COLUMN holdout_variation TEXT NOT NULL DEFAULT '';
