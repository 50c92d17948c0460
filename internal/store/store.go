package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *DB) bumpEnv(ctx context.Context, q querier, envID int64) error {
	_, err := q.ExecContext(ctx, d.q(`UPDATE environments SET revision = revision + 1, updated_at = ? WHERE id = ?`), micros(d.now()), envID)
	return err
}

func (d *DB) bumpAll(ctx context.Context, q querier) error {
	_, err := q.ExecContext(ctx, d.q(`UPDATE environments SET revision = revision + 1, updated_at = ?`), micros(d.now()))
	return err
}

func (d *DB) audit(ctx context.Context, q querier, action, entity, key, env string, before, after any) error {
	enc := func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	b, err := enc(before)
	if err != nil {
		return err
	}
	a, err := enc(after)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, d.q(`INSERT INTO audit_log (at, actor, action, entity, entity_key, environment, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		micros(d.now()), Actor(ctx), action, entity, key, env, b, a)
	return err
}

// ---- environments

const envColumns = `id, name, revision, created_at, updated_at`

func scanEnv(sc interface{ Scan(...any) error }) (int64, Environment, error) {
	var id, created, updated int64
	var e Environment
	err := sc.Scan(&id, &e.Name, &e.Revision, &created, &updated)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return id, e, err
}

// Environments lists the environments by name.
func (d *DB) Environments(ctx context.Context) ([]Environment, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+envColumns+` FROM environments ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Environment
	for rows.Next() {
		_, e, err := scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (d *DB) env(ctx context.Context, q querier, name string) (int64, Environment, error) {
	id, e, err := scanEnv(q.QueryRowContext(ctx, d.q(`SELECT `+envColumns+` FROM environments WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, e, Errorf(ENOTFOUND, "environment %q not found", name)
	}
	return id, e, err
}

// Environment returns one environment.
func (d *DB) Environment(ctx context.Context, name string) (Environment, error) {
	_, e, err := d.env(ctx, d.db, name)
	return e, err
}

// CreateEnvironment creates an environment in which every flag is off.
func (d *DB) CreateEnvironment(ctx context.Context, name string) (Environment, error) {
	if err := ValidateEnvironmentName(name); err != nil {
		return Environment{}, err
	}
	var e Environment
	err := d.tx(ctx, func(tx *sql.Tx) error {
		now := micros(d.now())
		res, err := tx.ExecContext(ctx, d.q(`INSERT INTO environments (name, revision, created_at, updated_at) VALUES (?, 1, ?, ?) ON CONFLICT (name) DO NOTHING`), name, now, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ECONFLICT, "environment %q already exists", name)
		}
		if _, e, err = d.env(ctx, tx, name); err != nil {
			return err
		}
		return d.audit(ctx, tx, "create", "environment", name, name, nil, e)
	})
	return e, err
}

// ---- flags

const flagColumns = `id, key, description, variation_type, variations, version, created_at, updated_at`

func scanFlag(sc interface{ Scan(...any) error }) (int64, Flag, error) {
	var id, created, updated int64
	var f Flag
	var vars string
	err := sc.Scan(&id, &f.Key, &f.Description, &f.VariationType, &vars, &f.Version, &created, &updated)
	if err != nil {
		return 0, f, err
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	return id, f, json.Unmarshal([]byte(vars), &f.Variations)
}

// Flags lists the flag definitions by key.
func (d *DB) Flags(ctx context.Context) ([]Flag, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+flagColumns+` FROM flags ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Flag{}
	for rows.Next() {
		_, f, err := scanFlag(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (d *DB) flag(ctx context.Context, q querier, key string) (int64, Flag, error) {
	id, f, err := scanFlag(q.QueryRowContext(ctx, d.q(`SELECT `+flagColumns+` FROM flags WHERE key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, f, Errorf(ENOTFOUND, "flag %q not found", key)
	}
	return id, f, err
}

// Flag returns one flag definition.
func (d *DB) Flag(ctx context.Context, key string) (Flag, error) {
	_, f, err := d.flag(ctx, d.db, key)
	return f, err
}

// CreateFlag creates a flag; it starts off, with no allocations, in every
// environment.
func (d *DB) CreateFlag(ctx context.Context, f Flag) (Flag, error) {
	if err := ValidateFlag(&f); err != nil {
		return Flag{}, err
	}
	vars, err := json.Marshal(f.Variations)
	if err != nil {
		return Flag{}, err
	}
	var out Flag
	err = d.tx(ctx, func(tx *sql.Tx) error {
		now := micros(d.now())
		res, err := tx.ExecContext(ctx, d.q(`INSERT INTO flags (key, description, variation_type, variations, version, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (key) DO NOTHING`),
			f.Key, f.Description, string(f.VariationType), string(vars), now, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ECONFLICT, "flag %q already exists", f.Key)
		}
		if _, out, err = d.flag(ctx, tx, f.Key); err != nil {
			return err
		}
		if err := d.bumpAll(ctx, tx); err != nil {
			return err
		}
		return d.audit(ctx, tx, "create", "flag", f.Key, "", nil, out)
	})
	return out, err
}

// UpdateFlag replaces a flag's description and variations. f.Version must be
// the version the caller read. The variation type cannot change, and a
// variation still used by an allocation cannot be removed.
func (d *DB) UpdateFlag(ctx context.Context, f Flag) (Flag, error) {
	if err := ValidateFlag(&f); err != nil {
		return Flag{}, err
	}
	vars, err := json.Marshal(f.Variations)
	if err != nil {
		return Flag{}, err
	}
	var out Flag
	err = d.tx(ctx, func(tx *sql.Tx) error {
		id, before, err := d.flag(ctx, tx, f.Key)
		if err != nil {
			return err
		}
		if before.Version != f.Version {
			return Errorf(ECONFLICT, "flag %q is at version %d, not %d: reload and retry", f.Key, before.Version, f.Version)
		}
		if before.VariationType != f.VariationType {
			return Invalid("variationType", "cannot change from %s; create a new flag", before.VariationType)
		}
		// Every environment's allocations must still be valid.
		settings, err := d.allSettings(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, s := range settings {
			if err := ValidateSettings(&s, &f); err != nil {
				return Invalid("variations", "environment %s still uses a removed variation (%v)", s.Environment, err)
			}
		}
		res, err := tx.ExecContext(ctx, d.q(`UPDATE flags SET description = ?, variations = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?`),
			f.Description, string(vars), micros(d.now()), id, f.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ECONFLICT, "flag %q was changed concurrently: reload and retry", f.Key)
		}
		if _, out, err = d.flag(ctx, tx, f.Key); err != nil {
			return err
		}
		if err := d.bumpAll(ctx, tx); err != nil {
			return err
		}
		return d.audit(ctx, tx, "update", "flag", f.Key, "", before, out)
	})
	return out, err
}

// DeleteFlag deletes a flag and its settings everywhere. version must be
// the version the caller read.
func (d *DB) DeleteFlag(ctx context.Context, key string, version int64) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		id, before, err := d.flag(ctx, tx, key)
		if err != nil {
			return err
		}
		if before.Version != version {
			return Errorf(ECONFLICT, "flag %q is at version %d, not %d: reload and retry", key, before.Version, version)
		}
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM flag_settings WHERE flag_id = ?`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM flags WHERE id = ?`), id); err != nil {
			return err
		}
		if err := d.bumpAll(ctx, tx); err != nil {
			return err
		}
		return d.audit(ctx, tx, "delete", "flag", key, "", before, nil)
	})
}

// ---- flag settings

func (d *DB) allSettings(ctx context.Context, q querier, flagID int64) ([]FlagSettings, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT e.name, s.enabled, s.allocations, s.version, s.updated_at FROM flag_settings s JOIN environments e ON e.id = s.environment_id WHERE s.flag_id = ?`), flagID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FlagSettings
	for rows.Next() {
		var s FlagSettings
		var allocs string
		var updated int64
		if err := rows.Scan(&s.Environment, &s.Enabled, &allocs, &s.Version, &updated); err != nil {
			return nil, err
		}
		s.UpdatedAt = fromMicros(updated)
		if err := json.Unmarshal([]byte(allocs), &s.Allocations); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (d *DB) settings(ctx context.Context, q querier, envID, flagID int64, env, flag string) (FlagSettings, error) {
	s := FlagSettings{Flag: flag, Environment: env, Allocations: []Allocation{}}
	var allocs string
	var updated int64
	err := q.QueryRowContext(ctx, d.q(`SELECT enabled, allocations, version, updated_at FROM flag_settings WHERE flag_id = ? AND environment_id = ?`), flagID, envID).
		Scan(&s.Enabled, &allocs, &s.Version, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil // never written: off, no allocations, version 0
	}
	if err != nil {
		return s, err
	}
	s.UpdatedAt = fromMicros(updated)
	return s, json.Unmarshal([]byte(allocs), &s.Allocations)
}

// FlagSettings returns a flag's settings in an environment.
func (d *DB) FlagSettings(ctx context.Context, env, flag string) (FlagSettings, error) {
	envID, _, err := d.env(ctx, d.db, env)
	if err != nil {
		return FlagSettings{}, err
	}
	flagID, _, err := d.flag(ctx, d.db, flag)
	if err != nil {
		return FlagSettings{}, err
	}
	return d.settings(ctx, d.db, envID, flagID, env, flag)
}

// UpdateFlagSettings replaces a flag's settings in an environment. s.Version
// must be the version the caller read (0 if never written). Salts of
// allocations that already existed (same key) are kept; new allocations get
// fresh random salts. It returns the settings before and after.
func (d *DB) UpdateFlagSettings(ctx context.Context, s FlagSettings) (before, after FlagSettings, err error) {
	err = d.tx(ctx, func(tx *sql.Tx) error {
		envID, _, err := d.env(ctx, tx, s.Environment)
		if err != nil {
			return err
		}
		flagID, f, err := d.flag(ctx, tx, s.Flag)
		if err != nil {
			return err
		}
		if s.Allocations == nil {
			s.Allocations = []Allocation{}
		}
		if err := ValidateSettings(&s, &f); err != nil {
			return err
		}
		before, err = d.settings(ctx, tx, envID, flagID, s.Environment, s.Flag)
		if err != nil {
			return err
		}
		if before.Version != s.Version {
			return Errorf(ECONFLICT, "settings of flag %q in %s are at version %d, not %d: reload and retry", s.Flag, s.Environment, before.Version, s.Version)
		}
		keepSalts(s.Allocations, before.Allocations)
		allocs, err := json.Marshal(s.Allocations)
		if err != nil {
			return err
		}
		now := micros(d.now())
		var res sql.Result
		if s.Version == 0 {
			res, err = tx.ExecContext(ctx, d.q(`INSERT INTO flag_settings (flag_id, environment_id, enabled, allocations, version, updated_at) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (flag_id, environment_id) DO NOTHING`),
				flagID, envID, s.Enabled, string(allocs), now)
		} else {
			res, err = tx.ExecContext(ctx, d.q(`UPDATE flag_settings SET enabled = ?, allocations = ?, version = version + 1, updated_at = ? WHERE flag_id = ? AND environment_id = ? AND version = ?`),
				s.Enabled, string(allocs), now, flagID, envID, s.Version)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ECONFLICT, "settings of flag %q in %s were changed concurrently: reload and retry", s.Flag, s.Environment)
		}
		if after, err = d.settings(ctx, tx, envID, flagID, s.Environment, s.Flag); err != nil {
			return err
		}
		if err := d.bumpEnv(ctx, tx, envID); err != nil {
			return err
		}
		return d.audit(ctx, tx, "update", "flag_settings", s.Flag, s.Environment, before, after)
	})
	return before, after, err
}

// keepSalts gives each allocation the salts of the previous allocation with
// the same key, and new random salts where it has none. A client cannot
// choose salts.
func keepSalts(next, prev []Allocation) {
	old := make(map[string]*Allocation, len(prev))
	for i := range prev {
		old[prev[i].Key] = &prev[i]
	}
	for i := range next {
		a := &next[i]
		a.TrafficSalt, a.SplitSalt = "", ""
		if p := old[a.Key]; p != nil {
			a.TrafficSalt, a.SplitSalt = p.TrafficSalt, p.SplitSalt
		}
		switch a.Type {
		case Experiment:
			if a.TrafficSalt == "" {
				a.TrafficSalt = randomSalt()
			}
			if a.SplitSalt == "" {
				a.SplitSalt = randomSalt()
			}
		case Rollout:
			if a.SplitSalt == "" {
				a.SplitSalt = randomSalt()
			}
		}
	}
}

// EnvironmentConfig reads what an environment's compiled configuration is
// made of. The revision is read first, so a change that lands while the
// rest is read only causes one more rebuild.
func (d *DB) EnvironmentConfig(ctx context.Context, env string) (EnvironmentConfig, error) {
	var cfg EnvironmentConfig
	envID, e, err := d.env(ctx, d.db, env)
	if err != nil {
		return cfg, err
	}
	cfg.Environment = e
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT f.id, f.key, f.description, f.variation_type, f.variations, f.version, f.created_at, f.updated_at,
		s.enabled, s.allocations, s.version, s.updated_at
		FROM flags f LEFT JOIN flag_settings s ON s.flag_id = f.id AND s.environment_id = ? ORDER BY f.key`), envID)
	if err != nil {
		return cfg, err
	}
	defer rows.Close()
	for rows.Next() {
		var fc FlagConfig
		var id, created, updated int64
		var vars string
		var enabled sql.NullBool
		var allocs sql.NullString
		var sver, supd sql.NullInt64
		f := &fc.Flag
		if err := rows.Scan(&id, &f.Key, &f.Description, &f.VariationType, &vars, &f.Version, &created, &updated, &enabled, &allocs, &sver, &supd); err != nil {
			return cfg, err
		}
		f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
		if err := json.Unmarshal([]byte(vars), &f.Variations); err != nil {
			return cfg, err
		}
		fc.Settings = FlagSettings{Flag: f.Key, Environment: env, Enabled: enabled.Bool, Version: sver.Int64, Allocations: []Allocation{}}
		if supd.Valid {
			fc.Settings.UpdatedAt = fromMicros(supd.Int64)
		}
		if allocs.Valid {
			if err := json.Unmarshal([]byte(allocs.String), &fc.Settings.Allocations); err != nil {
				return cfg, err
			}
		}
		cfg.Flags = append(cfg.Flags, fc)
	}
	if err := rows.Err(); err != nil {
		return cfg, err
	}
	rows.Close()
	krows, err := d.db.QueryContext(ctx, d.q(`SELECT hash FROM sdk_keys WHERE environment_id = ? AND revoked_at IS NULL`), envID)
	if err != nil {
		return cfg, err
	}
	defer krows.Close()
	for krows.Next() {
		var h string
		if err := krows.Scan(&h); err != nil {
			return cfg, err
		}
		var sum [32]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
			copy(sum[:], b)
			cfg.KeyHashes = append(cfg.KeyHashes, sum)
		}
	}
	return cfg, krows.Err()
}

// ---- SDK keys

// CreateSDKKey creates an SDK key for an environment. The returned key
// carries the secret, which is not stored and cannot be shown again.
func (d *DB) CreateSDKKey(ctx context.Context, env, name string) (SDKKey, error) {
	if strings.TrimSpace(name) == "" {
		return SDKKey{}, Invalid("name", "is required")
	}
	secret, prefix, hash := newSecret(SDKKeyPrefix)
	var k SDKKey
	err := d.tx(ctx, func(tx *sql.Tx) error {
		envID, _, err := d.env(ctx, tx, env)
		if err != nil {
			return err
		}
		now := d.now()
		err = tx.QueryRowContext(ctx, d.q(`INSERT INTO sdk_keys (environment_id, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
			envID, name, prefix, hash, micros(now)).Scan(&k.ID)
		if err != nil {
			return err
		}
		k = SDKKey{ID: k.ID, Name: name, Environment: env, Prefix: prefix, CreatedAt: fromMicros(micros(now))}
		if err := d.bumpEnv(ctx, tx, envID); err != nil {
			return err
		}
		return d.audit(ctx, tx, "create", "sdk_key", prefix, env, nil, k)
	})
	k.Secret = secret
	return k, err
}

// SDKKeys lists SDK keys, revoked ones included.
func (d *DB) SDKKeys(ctx context.Context) ([]SDKKey, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT k.id, k.name, e.name, k.prefix, k.created_at, k.revoked_at, k.last_used_at FROM sdk_keys k JOIN environments e ON e.id = k.environment_id ORDER BY k.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SDKKey{}
	for rows.Next() {
		var k SDKKey
		var created int64
		var revoked, used sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &k.Environment, &k.Prefix, &created, &revoked, &used); err != nil {
			return nil, err
		}
		k.CreatedAt, k.RevokedAt, k.LastUsedAt = fromMicros(created), fromNullMicros(revoked), fromNullMicros(used)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RecordSDKKeyUse records when SDK keys, named by their hashes, last fetched
// a configuration. A time never moves a key's last use backwards.
func (d *DB) RecordSDKKeyUse(ctx context.Context, uses map[[32]byte]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	return d.tx(ctx, func(tx *sql.Tx) error {
		for h, at := range uses {
			_, err := tx.ExecContext(ctx, d.q(`UPDATE sdk_keys SET last_used_at = ? WHERE hash = ? AND (last_used_at IS NULL OR last_used_at < ?)`),
				micros(at), hex.EncodeToString(h[:]), micros(at))
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// RevokeSDKKey revokes an SDK key; servers stop accepting it within a poll.
func (d *DB) RevokeSDKKey(ctx context.Context, id int64) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		var envID int64
		var prefix, env string
		err := tx.QueryRowContext(ctx, d.q(`SELECT k.environment_id, k.prefix, e.name FROM sdk_keys k JOIN environments e ON e.id = k.environment_id WHERE k.id = ? AND k.revoked_at IS NULL`), id).Scan(&envID, &prefix, &env)
		if errors.Is(err, sql.ErrNoRows) {
			return Errorf(ENOTFOUND, "no live SDK key with id %d", id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE sdk_keys SET revoked_at = ? WHERE id = ?`), micros(d.now()), id); err != nil {
			return err
		}
		if err := d.bumpEnv(ctx, tx, envID); err != nil {
			return err
		}
		return d.audit(ctx, tx, "revoke", "sdk_key", prefix, env, nil, nil)
	})
}

// ---- admin tokens

// CreateAdminToken creates an admin token; the secret is returned once.
func (d *DB) CreateAdminToken(ctx context.Context, name string) (AdminToken, error) {
	if strings.TrimSpace(name) == "" {
		return AdminToken{}, Invalid("name", "is required")
	}
	secret, prefix, hash := newSecret(AdminTokenPrefix)
	t, err := d.insertAdminToken(ctx, name, prefix, hash)
	t.Secret = secret
	return t, err
}

func (d *DB) insertAdminToken(ctx context.Context, name, prefix, hash string) (AdminToken, error) {
	var t AdminToken
	err := d.tx(ctx, func(tx *sql.Tx) error {
		now := fromMicros(micros(d.now()))
		err := tx.QueryRowContext(ctx, d.q(`INSERT INTO admin_tokens (name, prefix, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`),
			name, prefix, hash, micros(now)).Scan(&t.ID)
		if err != nil {
			return err
		}
		t = AdminToken{ID: t.ID, Name: name, Prefix: prefix, CreatedAt: now}
		return d.audit(ctx, tx, "create", "admin_token", prefix, "", nil, t)
	})
	return t, err
}

// AdminTokens lists admin tokens, revoked ones included.
func (d *DB) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, name, prefix, created_at, revoked_at FROM admin_tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AdminToken{}
	for rows.Next() {
		var t AdminToken
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Prefix, &created, &revoked); err != nil {
			return nil, err
		}
		t.CreatedAt, t.RevokedAt = fromMicros(created), fromNullMicros(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeAdminToken revokes an admin token.
func (d *DB) RevokeAdminToken(ctx context.Context, id int64) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		var prefix string
		err := tx.QueryRowContext(ctx, d.q(`SELECT prefix FROM admin_tokens WHERE id = ? AND revoked_at IS NULL`), id).Scan(&prefix)
		if errors.Is(err, sql.ErrNoRows) {
			return Errorf(ENOTFOUND, "no live admin token with id %d", id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE admin_tokens SET revoked_at = ? WHERE id = ?`), micros(d.now()), id); err != nil {
			return err
		}
		// Its web UI sessions end with it.
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM sessions WHERE token_id = ?`), id); err != nil {
			return err
		}
		return d.audit(ctx, tx, "revoke", "admin_token", prefix, "", nil, nil)
	})
}

// AuthenticateAdmin returns the live admin token whose secret is given, or
// an EUNAUTHORIZED error.
func (d *DB) AuthenticateAdmin(ctx context.Context, secret string) (AdminToken, error) {
	var t AdminToken
	want := HashSecret(secret)
	var hash string
	var created int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT id, name, prefix, hash, created_at FROM admin_tokens WHERE hash = ? AND revoked_at IS NULL`), hex.EncodeToString(want[:])).
		Scan(&t.ID, &t.Name, &t.Prefix, &hash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, Errorf(EUNAUTHORIZED, "invalid or revoked admin token")
	}
	if err != nil {
		return t, err
	}
	got, err := hex.DecodeString(hash)
	if err != nil || subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return AdminToken{}, Errorf(EUNAUTHORIZED, "invalid or revoked admin token")
	}
	t.CreatedAt = fromMicros(created)
	return t, nil
}

// Bootstrap runs on every start. The first start of a database creates an
// admin token: the one given (ALLOT_ADMIN_TOKEN), or a random one returned
// as created so the caller can print it once. A token given on a later
// start is added if the database does not know it yet.
func (d *DB) Bootstrap(ctx context.Context, given string) (created string, err error) {
	ctx = WithActor(ctx, "system:bootstrap")
	res, err := d.db.ExecContext(ctx, d.q(`INSERT INTO meta (key, value) VALUES ('bootstrapped', ?) ON CONFLICT (key) DO NOTHING`), d.now().UTC().Format(time.RFC3339))
	if err != nil {
		return "", err
	}
	first, _ := res.RowsAffected()
	if given != "" {
		if len(given) < 16 {
			return "", Invalid("ALLOT_ADMIN_TOKEN", "must be at least 16 characters")
		}
		var n int
		if err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM admin_tokens WHERE hash = ?`), HashSecretHex(given)).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			// Show a token of Allot's own form by its prefix, as the others;
			// any other string could be all secret, so show a fingerprint.
			prefix := "sha256:" + HashSecretHex(given)[:8]
			if strings.HasPrefix(given, AdminTokenPrefix) && len(given) >= len(AdminTokenPrefix)+32 {
				prefix = given[:len(AdminTokenPrefix)+6] // as newSecret shows its own
			}
			_, err := d.insertAdminToken(ctx, "ALLOT_ADMIN_TOKEN", prefix, HashSecretHex(given))
			return "", err
		}
		return "", nil
	}
	if first == 0 {
		return "", nil
	}
	t, err := d.CreateAdminToken(ctx, "initial")
	return t.Secret, err
}

// ---- audit log

// Audit returns up to limit entries, newest first, older than the entry
// with ID before (0: from the newest).
func (d *DB) Audit(ctx context.Context, limit int, before int64) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT id, at, actor, action, entity, entity_key, environment, before, after FROM audit_log`
	args := []any{}
	if before > 0 {
		query += ` WHERE id < ?`
		args = append(args, before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		var b, a sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Entity, &e.Key, &e.Environment, &b, &a); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		if b.Valid {
			e.Before = json.RawMessage(b.String)
		}
		if a.Valid {
			e.After = json.RawMessage(a.String)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
