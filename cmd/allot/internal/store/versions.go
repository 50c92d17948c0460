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

// FlagVersion is where one flag stands in one environment: enough for a
// publisher to tell which flags changed without decoding any.
type FlagVersion struct {
	Key       string
	Version   int64     // the definition's version
	CreatedAt time.Time // tells a flag deleted and created again apart
	// SettingsVersion is the version of the flag's settings in the
	// environment, 0 if they were never written.
	SettingsVersion int64
}

// EnvironmentVersions reads an environment, the versions of every flag in
// it (sorted by key; archived flags, which are not published, left out), the hashes of its live server SDK keys and its live
// client keys. The environment
// is read first, so a change landing during the rest moves its revision
// past the one returned.
//
// It uses only the connection pool and plain SQL, so that it stays put
// while the rest of the store moves behind the domain core.
func (d *DB) EnvironmentVersions(ctx context.Context, env string) (core.Environment, []FlagVersion, [][32]byte, []core.ClientKey, error) {
	var e core.Environment
	var envID, created, updated int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT id, name, revision, created_at, updated_at FROM environments WHERE name = ?`), env).
		Scan(&envID, &e.Name, &e.Revision, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return e, nil, nil, nil, core.Errorf(core.ENOTFOUND, "environment %q not found", env)
	}
	if err != nil {
		return e, nil, nil, nil, err
	}
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT f.key, f.version, f.created_at, s.version
		FROM flags f LEFT JOIN flag_settings s ON s.flag_id = f.id AND s.environment_id = ?
		WHERE f.archived_at IS NULL ORDER BY f.key`), envID)
	if err != nil {
		return e, nil, nil, nil, err
	}
	defer rows.Close()
	var out []FlagVersion
	for rows.Next() {
		var v FlagVersion
		var created int64
		var sver *int64
		if err := rows.Scan(&v.Key, &v.Version, &created, &sver); err != nil {
			return e, nil, nil, nil, err
		}
		v.CreatedAt = fromMicros(created)
		if sver != nil {
			v.SettingsVersion = *sver
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return e, nil, nil, nil, err
	}
	rows.Close()
	krows, err := d.db.QueryContext(ctx, d.q(`SELECT hash, kind, origins FROM sdk_keys WHERE environment_id = ? AND revoked_at IS NULL`), envID)
	if err != nil {
		return e, nil, nil, nil, err
	}
	defer krows.Close()
	// Server and client keys apart: a client key must never read what a
	// server key reads (the same split as EnvironmentConfig).
	var keys [][32]byte
	var clients []core.ClientKey
	for krows.Next() {
		var h, kind, origins string
		if err := krows.Scan(&h, &kind, &origins); err != nil {
			return e, nil, nil, nil, err
		}
		var sum [32]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
			copy(sum[:], b)
		} else {
			continue
		}
		switch kind {
		case core.KeyServer:
			keys = append(keys, sum)
		case core.KeyClient:
			ck := core.ClientKey{Hash: sum}
			if err := json.Unmarshal([]byte(origins), &ck.Origins); err != nil {
				return e, nil, nil, nil, fmt.Errorf("client key origins: %w", err)
			}
			clients = append(clients, ck)
		}
	}
	return e, out, keys, clients, krows.Err()
}
