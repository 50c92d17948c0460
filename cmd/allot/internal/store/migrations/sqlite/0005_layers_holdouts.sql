-- Layers and holdouts (issue 15). The body is the layer's range layout
-- (salt, members with their ranges in the order taken and the ranges they
-- gave back) or the holdout's percentage and experiments, as JSON: the
-- layout is stored, never recomputed from percentages.
CREATE TABLE layers (
	id             INTEGER PRIMARY KEY,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	body           TEXT NOT NULL,
	version        INTEGER NOT NULL DEFAULT 1,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	UNIQUE (environment_id, name)
);

CREATE TABLE holdouts (
	id             INTEGER PRIMARY KEY,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	body           TEXT NOT NULL,
	version        INTEGER NOT NULL DEFAULT 1,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	UNIQUE (environment_id, name)
);
