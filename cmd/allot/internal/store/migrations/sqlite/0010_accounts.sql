-- Accounts and roles (issue 17). A person signs in with an email and a
-- password (an argon2id PHC string; '' means no password sign-in yet). Role
-- is the account's role everywhere; user_environment_roles overrides it in
-- one environment. Admin tokens now belong to an account and carry a role no
-- wider than the account's.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL DEFAULT '',
	role          TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
	created_at    INTEGER NOT NULL,
	disabled_at   INTEGER
);

CREATE TABLE user_environment_roles (
	user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	role           TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
	PRIMARY KEY (user_id, environment_id)
);

-- The bootstrap admin account. Existing admin tokens become its tokens with
-- role admin; it has no password until the first start sets one (printed
-- once) or `allot users passwd` does.
INSERT INTO users (email, role, created_at)
VALUES ('admin@localhost', 'admin', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

ALTER TABLE admin_tokens ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
UPDATE admin_tokens SET user_id = (SELECT id FROM users WHERE email = 'admin@localhost');
CREATE INDEX admin_tokens_user ON admin_tokens (user_id);

-- A session now belongs to an account, signed in with its password (token_id
-- NULL) or with one of its tokens. Sessions of the old shape cannot say whose
-- they are, so they end: everyone signs in again once after the upgrade.
DROP TABLE sessions;
CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token_id   INTEGER REFERENCES admin_tokens(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_token ON sessions (token_id);
