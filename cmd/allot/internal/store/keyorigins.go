package store

import (
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// SetSDKKeyOrigins replaces a live client key's allowed origins and
// returns the key as it was before.
func (t *tx) SetSDKKeyOrigins(id int64, origins []string) (core.SDKKey, error) {
	k := core.SDKKey{ID: id}
	var old string
	err := t.row(`SELECT k.name, k.prefix, k.kind, k.origins, e.name FROM sdk_keys k JOIN environments e ON e.id = k.environment_id WHERE k.id = ? AND k.revoked_at IS NULL`, id).
		Scan(&k.Name, &k.Prefix, &k.Kind, &old, &k.Environment)
	if errors.Is(err, sql.ErrNoRows) {
		return k, core.Errorf(core.ENOTFOUND, "no live SDK key with id %d", id)
	}
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(old), &k.Origins); err != nil {
		return k, err
	}
	b := []byte("[]")
	if len(origins) > 0 {
		if b, err = json.Marshal(origins); err != nil {
			return k, err
		}
	}
	_, err = t.exec(`UPDATE sdk_keys SET origins = ? WHERE id = ?`, string(b), id)
	return k, err
}
