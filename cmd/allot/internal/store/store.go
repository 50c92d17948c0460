package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The store is SQL only: it implements core.Store and core.Tx, and the
// domain core decides everything else (validation, audit, notification).

var _ core.Store = (*DB)(nil)
var _ core.Tx = (*tx)(nil)

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx is one transaction, as the core sees it.
type tx struct {
	d   *DB
	ctx context.Context
	q   querier
}

// Read runs fn in a read-only transaction: one consistent snapshot
// (REPEATABLE READ on PostgreSQL; a deferred transaction in WAL mode on
// SQLite, which takes no write lock).
func (d *DB) Read(ctx context.Context, fn func(core.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if d.postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	t, err := d.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := fn(&tx{d: d, ctx: ctx, q: t}); err != nil {
		return err
	}
	return t.Commit()
}

// Write runs fn in a read-write transaction, committed if fn returns nil.
func (d *DB) Write(ctx context.Context, fn func(core.Tx) error) error {
	return d.tx(ctx, func(t *sql.Tx) error { return fn(&tx{d: d, ctx: ctx, q: t}) })
}

// SetConfigHook sets a function EnvironmentConfig calls between its
// statements (tests: a write made from it must not be seen).
func (d *DB) SetConfigHook(fn func()) { d.configHook = fn }

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	return t.q.ExecContext(t.ctx, t.d.q(query), args...)
}

func (t *tx) row(query string, args ...any) *sql.Row {
	return t.q.QueryRowContext(t.ctx, t.d.q(query), args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	return t.q.QueryContext(t.ctx, t.d.q(query), args...)
}

func (t *tx) now() int64 { return micros(t.d.now()) }

// Bump moves the revision of env, or of every environment, and tells the
// other replicas at commit (notify.go).
func (t *tx) Bump(env string) error {
	var err error
	if env == "" {
		_, err = t.exec(`UPDATE environments SET revision = revision + 1, updated_at = ?`, t.now())
	} else {
		_, err = t.exec(`UPDATE environments SET revision = revision + 1, updated_at = ? WHERE name = ?`, t.now(), env)
	}
	if err != nil {
		return err
	}
	return t.notify(env)
}

// AppendAudit appends an audit entry, stamped with the store's clock.
func (t *tx) AppendAudit(e core.AuditEntry) error {
	str := func(b json.RawMessage) any {
		if b == nil {
			return nil
		}
		return string(b)
	}
	_, err := t.exec(`INSERT INTO audit_log (at, actor, action, entity, entity_key, environment, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.now(), e.Actor, e.Action, e.Entity, e.Key, e.Environment, str(e.Before), str(e.After))
	return err
}

// ---- environments

const envColumns = `id, name, revision, created_at, updated_at`

func scanEnv(sc interface{ Scan(...any) error }) (int64, core.Environment, error) {
	var id, created, updated int64
	var e core.Environment
	err := sc.Scan(&id, &e.Name, &e.Revision, &created, &updated)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return id, e, err
}

func (t *tx) Environments() ([]core.Environment, error) {
	rows, err := t.query(`SELECT ` + envColumns + ` FROM environments ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []core.Environment
	for rows.Next() {
		_, e, err := scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (t *tx) env(name string) (int64, core.Environment, error) {
	id, e, err := scanEnv(t.row(`SELECT `+envColumns+` FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, e, core.Errorf(core.ENOTFOUND, "environment %q not found", name)
	}
	return id, e, err
}

func (t *tx) Environment(name string) (core.Environment, error) {
	_, e, err := t.env(name)
	return e, err
}

func (t *tx) InsertEnvironment(name string) (core.Environment, error) {
	now := t.now()
	res, err := t.exec(`INSERT INTO environments (name, revision, created_at, updated_at) VALUES (?, 1, ?, ?) ON CONFLICT (name) DO NOTHING`, name, now, now)
	if err != nil {
		return core.Environment{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Environment{}, core.Errorf(core.ECONFLICT, "environment %q already exists", name)
	}
	return t.Environment(name)
}

// ---- flags

const flagColumns = `id, key, description, variation_type, variations, version, created_at, updated_at, tags, owner, archived_at`

func scanFlag(sc interface{ Scan(...any) error }) (int64, core.Flag, error) {
	var id int64
	var f core.Flag
	var fr flagRow
	err := sc.Scan(&id, &f.Key, &f.Description, &f.VariationType, &fr.vars, &f.Version, &fr.created, &fr.updated, &fr.tags, &f.Owner, &fr.archived)
	if err != nil {
		return 0, f, err
	}
	return id, f, fr.fill(&f)
}

// flagRow holds the columns of a flag that need decoding.
type flagRow struct {
	vars, tags       string
	created, updated int64
	archived         sql.NullInt64
}

func (fr *flagRow) fill(f *core.Flag) error {
	f.CreatedAt, f.UpdatedAt = fromMicros(fr.created), fromMicros(fr.updated)
	if fr.archived.Valid {
		t := fromMicros(fr.archived.Int64)
		f.ArchivedAt = &t
	}
	if err := json.Unmarshal([]byte(fr.tags), &f.Tags); err != nil {
		return fmt.Errorf("flag %s tags: %w", f.Key, err)
	}
	if len(f.Tags) == 0 {
		f.Tags = nil
	}
	return json.Unmarshal([]byte(fr.vars), &f.Variations)
}

// flagExtras encodes what InsertFlag and UpdateFlag write besides the
// description.
func flagExtras(f core.Flag) (vars, tags string, archived any, err error) {
	v, err := json.Marshal(f.Variations)
	if err != nil {
		return "", "", nil, err
	}
	tl := f.Tags
	if tl == nil {
		tl = []string{}
	}
	tg, err := json.Marshal(tl)
	if err != nil {
		return "", "", nil, err
	}
	if f.ArchivedAt != nil {
		archived = f.ArchivedAt.UnixMicro()
	}
	return string(v), string(tg), archived, nil
}

func (t *tx) Flags() ([]core.Flag, error) {
	rows, err := t.query(`SELECT ` + flagColumns + ` FROM flags ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.Flag{}
	for rows.Next() {
		_, f, err := scanFlag(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (t *tx) flag(key string, lock bool) (int64, core.Flag, error) {
	query := `SELECT ` + flagColumns + ` FROM flags WHERE key = ?`
	if lock && t.d.postgres {
		// SQLite's write transactions are IMMEDIATE: writers are already
		// serialized, and SQLite has no FOR UPDATE.
		query += ` FOR UPDATE`
	}
	id, f, err := scanFlag(t.row(query, key))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, f, core.Errorf(core.ENOTFOUND, "flag %q not found", key)
	}
	return id, f, err
}

func (t *tx) Flag(key string, lock bool) (core.Flag, error) {
	_, f, err := t.flag(key, lock)
	return f, err
}

func (t *tx) InsertFlag(f core.Flag) (core.Flag, error) {
	vars, tags, archived, err := flagExtras(f)
	if err != nil {
		return core.Flag{}, err
	}
	now := t.now()
	res, err := t.exec(`INSERT INTO flags (key, description, variation_type, variations, version, created_at, updated_at, tags, owner, archived_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		f.Key, f.Description, string(f.VariationType), vars, now, now, tags, f.Owner, archived)
	if err != nil {
		return core.Flag{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Flag{}, core.Errorf(core.ECONFLICT, "flag %q already exists", f.Key)
	}
	return t.Flag(f.Key, false)
}

func (t *tx) UpdateFlag(f core.Flag) (core.Flag, error) {
	vars, tags, archived, err := flagExtras(f)
	if err != nil {
		return core.Flag{}, err
	}
	res, err := t.exec(`UPDATE flags SET description = ?, variations = ?, tags = ?, owner = ?, archived_at = ?, version = version + 1, updated_at = ? WHERE key = ? AND version = ?`,
		f.Description, vars, tags, f.Owner, archived, t.now(), f.Key, f.Version)
	if err != nil {
		return core.Flag{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Flag{}, core.Errorf(core.ECONFLICT, "flag %q was changed concurrently: reload and retry", f.Key)
	}
	return t.Flag(f.Key, false)
}

func (t *tx) DeleteFlag(key string, version int64) error {
	id, f, err := t.flag(key, true)
	if err != nil {
		return err
	}
	if f.Version != version {
		return core.Errorf(core.ECONFLICT, "flag %q was changed concurrently: reload and retry", key)
	}
	if _, err := t.exec(`DELETE FROM flag_settings WHERE flag_id = ?`, id); err != nil {
		return err
	}
	_, err = t.exec(`DELETE FROM flags WHERE id = ?`, id)
	return err
}

// ---- flag settings

func (t *tx) AllSettings(flag string) ([]core.FlagSettings, error) {
	rows, err := t.query(`SELECT e.name, s.enabled, s.allocations, s.version, s.updated_at FROM flag_settings s JOIN environments e ON e.id = s.environment_id JOIN flags f ON f.id = s.flag_id WHERE f.key = ?`, flag)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []core.FlagSettings
	for rows.Next() {
		s := core.FlagSettings{Flag: flag}
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

func (t *tx) ids(env, flag string) (envID, flagID int64, err error) {
	if envID, _, err = t.env(env); err != nil {
		return 0, 0, err
	}
	if flagID, _, err = t.flag(flag, false); err != nil {
		return 0, 0, err
	}
	return envID, flagID, nil
}

func (t *tx) Settings(env, flag string) (core.FlagSettings, error) {
	s := core.FlagSettings{Flag: flag, Environment: env, Allocations: []core.Allocation{}}
	envID, flagID, err := t.ids(env, flag)
	if err != nil {
		return s, err
	}
	var allocs string
	var updated int64
	err = t.row(`SELECT enabled, allocations, version, updated_at FROM flag_settings WHERE flag_id = ? AND environment_id = ?`, flagID, envID).
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

func (t *tx) PutSettings(s core.FlagSettings) (core.FlagSettings, error) {
	envID, flagID, err := t.ids(s.Environment, s.Flag)
	if err != nil {
		return s, err
	}
	allocs, err := json.Marshal(s.Allocations)
	if err != nil {
		return s, err
	}
	now := t.now()
	var res sql.Result
	if s.Version == 0 {
		res, err = t.exec(`INSERT INTO flag_settings (flag_id, environment_id, enabled, allocations, version, updated_at) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (flag_id, environment_id) DO NOTHING`,
			flagID, envID, s.Enabled, string(allocs), now)
	} else {
		res, err = t.exec(`UPDATE flag_settings SET enabled = ?, allocations = ?, version = version + 1, updated_at = ? WHERE flag_id = ? AND environment_id = ? AND version = ?`,
			s.Enabled, string(allocs), now, flagID, envID, s.Version)
	}
	if err != nil {
		return s, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return s, core.Errorf(core.ECONFLICT, "settings of flag %q in %s were changed concurrently: reload and retry", s.Flag, s.Environment)
	}
	return t.Settings(s.Environment, s.Flag)
}

// EnvironmentConfig reads what an environment's compiled configuration is
// made of, within the transaction (the core runs it in a read one).
func (t *tx) EnvironmentConfig(env string) (core.EnvironmentConfig, error) {
	var cfg core.EnvironmentConfig
	envID, e, err := t.env(env)
	if err != nil {
		return cfg, err
	}
	cfg.Environment = e
	rows, err := t.query(`SELECT f.id, f.key, f.description, f.variation_type, f.variations, f.version, f.created_at, f.updated_at, f.tags, f.owner, f.archived_at,
		s.enabled, s.allocations, s.version, s.updated_at
		FROM flags f LEFT JOIN flag_settings s ON s.flag_id = f.id AND s.environment_id = ? ORDER BY f.key`, envID)
	if err != nil {
		return cfg, err
	}
	defer rows.Close()
	for rows.Next() {
		var fc core.FlagConfig
		var id int64
		var fr flagRow
		var enabled sql.NullBool
		var allocs sql.NullString
		var sver, supd sql.NullInt64
		f := &fc.Flag
		if err := rows.Scan(&id, &f.Key, &f.Description, &f.VariationType, &fr.vars, &f.Version, &fr.created, &fr.updated, &fr.tags, &f.Owner, &fr.archived, &enabled, &allocs, &sver, &supd); err != nil {
			return cfg, err
		}
		if err := fr.fill(f); err != nil {
			return cfg, err
		}
		fc.Settings = core.FlagSettings{Flag: f.Key, Environment: env, Enabled: enabled.Bool, Version: sver.Int64, Allocations: []core.Allocation{}}
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
	if t.d.configHook != nil {
		t.d.configHook()
	}
	krows, err := t.query(`SELECT hash, kind, origins FROM sdk_keys WHERE environment_id = ? AND revoked_at IS NULL`, envID)
	if err != nil {
		return cfg, err
	}
	defer krows.Close()
	for krows.Next() {
		var h, kind, origins string
		if err := krows.Scan(&h, &kind, &origins); err != nil {
			return cfg, err
		}
		var sum [32]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
			copy(sum[:], b)
		} else {
			continue
		}
		switch kind {
		case core.KeyServer:
			cfg.KeyHashes = append(cfg.KeyHashes, sum)
		case core.KeyClient:
			ck := core.ClientKey{Hash: sum}
			if err := json.Unmarshal([]byte(origins), &ck.Origins); err != nil {
				return cfg, fmt.Errorf("client key origins: %w", err)
			}
			cfg.ClientKeys = append(cfg.ClientKeys, ck)
		}
		// A kind this version does not know grants nothing.
	}
	return cfg, krows.Err()
}

// ---- SDK keys

func (t *tx) InsertSDKKey(k core.SDKKey, hash string) (core.SDKKey, error) {
	envID, _, err := t.env(k.Environment)
	if err != nil {
		return core.SDKKey{}, err
	}
	if k.Kind == "" {
		k.Kind = core.KeyServer
	}
	origins, err := json.Marshal(k.Origins)
	if err != nil {
		return core.SDKKey{}, err
	}
	if k.Origins == nil {
		origins = []byte("[]")
	}
	now := t.now()
	k.CreatedAt = fromMicros(now)
	err = t.row(`INSERT INTO sdk_keys (environment_id, name, prefix, hash, created_at, kind, origins) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		envID, k.Name, k.Prefix, hash, now, k.Kind, string(origins)).Scan(&k.ID)
	return k, err
}

func (t *tx) SDKKeys() ([]core.SDKKey, error) {
	rows, err := t.query(`SELECT k.id, k.name, e.name, k.prefix, k.created_at, k.revoked_at, k.last_used_at, k.kind, k.origins FROM sdk_keys k JOIN environments e ON e.id = k.environment_id ORDER BY k.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.SDKKey{}
	for rows.Next() {
		var k core.SDKKey
		var created int64
		var revoked, used sql.NullInt64
		var origins string
		if err := rows.Scan(&k.ID, &k.Name, &k.Environment, &k.Prefix, &created, &revoked, &used, &k.Kind, &origins); err != nil {
			return nil, err
		}
		k.CreatedAt, k.RevokedAt, k.LastUsedAt = fromMicros(created), fromNullMicros(revoked), fromNullMicros(used)
		if err := json.Unmarshal([]byte(origins), &k.Origins); err != nil {
			return nil, fmt.Errorf("sdk key %d: origins: %w", k.ID, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (t *tx) RevokeSDKKey(id int64) (core.SDKKey, error) {
	k := core.SDKKey{ID: id}
	err := t.row(`SELECT k.prefix, e.name FROM sdk_keys k JOIN environments e ON e.id = k.environment_id WHERE k.id = ? AND k.revoked_at IS NULL`, id).Scan(&k.Prefix, &k.Environment)
	if errors.Is(err, sql.ErrNoRows) {
		return k, core.Errorf(core.ENOTFOUND, "no live SDK key with id %d", id)
	}
	if err != nil {
		return k, err
	}
	res, err := t.exec(`UPDATE sdk_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, t.now(), id)
	if err != nil {
		return k, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return k, core.Errorf(core.ENOTFOUND, "no live SDK key with id %d", id)
	}
	return k, nil
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

// ---- admin tokens

func (t *tx) InsertAdminToken(tok core.AdminToken, hash string) (core.AdminToken, error) {
	now := t.now()
	tok.CreatedAt = fromMicros(now)
	err := t.row(`INSERT INTO admin_tokens (name, prefix, hash, created_at, user_id, role) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		tok.Name, tok.Prefix, hash, now, tok.UserID, string(tok.Role)).Scan(&tok.ID)
	return tok, err
}

func (t *tx) AdminTokens() ([]core.AdminToken, error) {
	rows, err := t.query(`SELECT t.id, t.name, t.prefix, t.created_at, t.revoked_at, COALESCE(t.user_id, 0), COALESCE(u.email, ''), t.role
		FROM admin_tokens t LEFT JOIN users u ON u.id = t.user_id ORDER BY t.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.AdminToken{}
	for rows.Next() {
		var tok core.AdminToken
		var created int64
		var revoked sql.NullInt64
		var role string
		if err := rows.Scan(&tok.ID, &tok.Name, &tok.Prefix, &created, &revoked, &tok.UserID, &tok.Email, &role); err != nil {
			return nil, err
		}
		tok.CreatedAt, tok.RevokedAt, tok.Role = fromMicros(created), fromNullMicros(revoked), core.Role(role)
		out = append(out, tok)
	}
	return out, rows.Err()
}

// LiveAdminTokens counts the live admin tokens. On PostgreSQL it locks
// them, so two concurrent revocations cannot both see two live tokens.
func (t *tx) LiveAdminTokens() (int, error) {
	if t.d.postgres {
		rows, err := t.query(`SELECT id FROM admin_tokens WHERE revoked_at IS NULL FOR UPDATE`)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		return n, rows.Err()
	}
	var n int
	err := t.row(`SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL`).Scan(&n)
	return n, err
}

// AdminTokenByHash returns the token with that hash, revoked or not, and
// the hash as stored.
func (t *tx) AdminTokenByHash(hash string) (core.AdminToken, string, error) {
	var tok core.AdminToken
	var stored string
	var created int64
	var revoked sql.NullInt64
	var role string
	err := t.row(`SELECT id, name, prefix, hash, created_at, revoked_at, COALESCE(user_id, 0), role FROM admin_tokens WHERE hash = ?`, hash).
		Scan(&tok.ID, &tok.Name, &tok.Prefix, &stored, &created, &revoked, &tok.UserID, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return tok, "", core.Errorf(core.ENOTFOUND, "no such admin token")
	}
	tok.CreatedAt, tok.RevokedAt, tok.Role = fromMicros(created), fromNullMicros(revoked), core.Role(role)
	return tok, stored, err
}

func (t *tx) AdminToken(id int64) (core.AdminToken, error) {
	tok := core.AdminToken{ID: id}
	var created int64
	var revoked sql.NullInt64
	var role string
	err := t.row(`SELECT name, prefix, created_at, revoked_at, COALESCE(user_id, 0), role FROM admin_tokens WHERE id = ?`, id).
		Scan(&tok.Name, &tok.Prefix, &created, &revoked, &tok.UserID, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return tok, core.Errorf(core.ENOTFOUND, "no admin token %d", id)
	}
	tok.CreatedAt, tok.RevokedAt, tok.Role = fromMicros(created), fromNullMicros(revoked), core.Role(role)
	return tok, err
}

func (t *tx) RevokeAdminToken(id int64) (core.AdminToken, error) {
	tok := core.AdminToken{ID: id}
	var role string
	err := t.row(`SELECT name, prefix, COALESCE(user_id, 0), role FROM admin_tokens WHERE id = ? AND revoked_at IS NULL`, id).Scan(&tok.Name, &tok.Prefix, &tok.UserID, &role)
	tok.Role = core.Role(role)
	if errors.Is(err, sql.ErrNoRows) {
		return tok, core.Errorf(core.ENOTFOUND, "no live admin token with id %d", id)
	}
	if err != nil {
		return tok, err
	}
	if _, err := t.exec(`UPDATE admin_tokens SET revoked_at = ? WHERE id = ?`, t.now(), id); err != nil {
		return tok, err
	}
	// Its web UI sessions end with it.
	_, err = t.exec(`DELETE FROM sessions WHERE token_id = ?`, id)
	return tok, err
}

func (t *tx) MarkBootstrapped() (bool, error) {
	res, err := t.exec(`INSERT INTO meta (key, value) VALUES ('bootstrapped', ?) ON CONFLICT (key) DO NOTHING`, t.d.now().UTC().Format(time.RFC3339))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ---- audit log

func (t *tx) Audit(limit int, before int64, maxBytes int) ([]core.AuditEntry, error) {
	query := `SELECT id, at, actor, action, entity, entity_key, environment, before, after FROM audit_log`
	args := []any{}
	if before > 0 {
		query += ` WHERE id < ?`
		args = append(args, before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	return t.readAudit(maxBytes, query, args...)
}

// FlagAudit reads a flag's entries backwards by id, as Audit does, through
// the (entity_key, id) index of migration 0016: one index range, however
// many entries other flags have.
func (t *tx) FlagAudit(flag, env string, limit, maxBytes int) ([]core.AuditEntry, error) {
	return t.readAudit(maxBytes, `SELECT id, at, actor, action, entity, entity_key, environment, before, after FROM audit_log
		WHERE entity_key = ? AND (entity = 'flag' OR (entity = 'flag_settings' AND environment = ?)) ORDER BY id DESC LIMIT ?`, flag, env, limit)
}

func (t *tx) readAudit(maxBytes int, query string, args ...any) ([]core.AuditEntry, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.AuditEntry{}
	size := 0
	for rows.Next() {
		var e core.AuditEntry
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
		size += len(e.Before) + len(e.After) + len(e.Actor) + len(e.Key) + 200
		if size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
