CREATE TABLE environments (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	revision   INTEGER NOT NULL DEFAULT 1,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE flags (
	id             INTEGER PRIMARY KEY,
	key            TEXT NOT NULL UNIQUE,
	description    TEXT NOT NULL DEFAULT '',
	variation_type TEXT NOT NULL,
	variations     TEXT NOT NULL,
	version        INTEGER NOT NULL DEFAULT 1,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
);

CREATE TABLE flag_settings (
	flag_id        INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	enabled        INTEGER NOT NULL DEFAULT 0,
	allocations    TEXT NOT NULL,
	version        INTEGER NOT NULL DEFAULT 1,
	updated_at     INTEGER NOT NULL,
	PRIMARY KEY (flag_id, environment_id)
);

CREATE TABLE sdk_keys (
	id             INTEGER PRIMARY KEY,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	prefix         TEXT NOT NULL,
	hash           TEXT NOT NULL UNIQUE,
	created_at     INTEGER NOT NULL,
	revoked_at     INTEGER
);

CREATE TABLE admin_tokens (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	prefix     TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);

CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	actor       TEXT NOT NULL,
	action      TEXT NOT NULL,
	entity      TEXT NOT NULL,
	entity_key  TEXT NOT NULL,
	environment TEXT NOT NULL DEFAULT '',
	before      TEXT,
	after       TEXT
);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
