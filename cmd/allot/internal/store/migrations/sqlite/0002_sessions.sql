-- Browser sessions of the web UI: one row per signed-in browser. id is the
-- SHA-256 of the cookie's secret; csrf is the session's synchronizer token.
CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	token_id   INTEGER NOT NULL REFERENCES admin_tokens(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_token ON sessions (token_id);

-- When an SDK key last fetched a configuration (to the minute), for the UI.
ALTER TABLE sdk_keys ADD COLUMN last_used_at INTEGER;
