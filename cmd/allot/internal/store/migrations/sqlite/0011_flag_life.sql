-- Issue 17: flags carry tags and an owner for the list's filters, and can
-- be archived (kept, but no longer published) and restored.
ALTER TABLE flags ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE flags ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE flags ADD COLUMN archived_at INTEGER;
