package store

import (
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// Layers and holdouts (issue 15) are rows of (environment, name, body),
// body being the JSON of what the core decides: the layer's range layout,
// the holdout's percentage and experiments. Both tables have one shape, so
// one set of helpers serves them.

type named struct {
	name             string
	body             string
	version          int64
	created, updated int64
}

func (t *tx) namedList(table, env string) ([]named, error) {
	envID, _, err := t.env(env)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(`SELECT name, body, version, created_at, updated_at FROM `+table+` WHERE environment_id = ? ORDER BY name`, envID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []named
	for rows.Next() {
		var n named
		if err := rows.Scan(&n.name, &n.body, &n.version, &n.created, &n.updated); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// namedAll reads every row of table in env and converts each with conv
// (toLayer, toHoldout).
func namedAll[T any](t *tx, table, env string, conv func(string, named) (T, error)) ([]T, error) {
	list, err := t.namedList(table, env)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(list))
	for _, n := range list {
		v, err := conv(env, n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (t *tx) namedOne(table, what, env, name string) (named, error) {
	envID, _, err := t.env(env)
	if err != nil {
		return named{}, err
	}
	n := named{name: name}
	err = t.row(`SELECT body, version, created_at, updated_at FROM `+table+` WHERE environment_id = ? AND name = ?`, envID, name).
		Scan(&n.body, &n.version, &n.created, &n.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return n, core.Errorf(core.ENOTFOUND, "%s %q not found in %s", what, name, env)
	}
	return n, err
}

func (t *tx) namedInsert(table, what, env, name string, body any) error {
	envID, _, err := t.env(env)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	now := t.now()
	res, err := t.exec(`INSERT INTO `+table+` (environment_id, name, body, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (environment_id, name) DO NOTHING`,
		envID, name, string(b), now, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Errorf(core.ECONFLICT, "%s %q already exists in %s", what, name, env)
	}
	return nil
}

func (t *tx) namedUpdate(table, what, env, name string, version int64, body any) error {
	envID, _, err := t.env(env)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	res, err := t.exec(`UPDATE `+table+` SET body = ?, version = version + 1, updated_at = ? WHERE environment_id = ? AND name = ? AND version = ?`,
		string(b), t.now(), envID, name, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Errorf(core.ECONFLICT, "%s %q in %s was changed concurrently: reload and retry", what, name, env)
	}
	return nil
}

// ---- layers

type layerBody struct {
	Salt    string             `json:"salt"`
	Members []core.LayerMember `json:"members"`
}

func toLayer(env string, n named) (core.Layer, error) {
	var b layerBody
	if err := json.Unmarshal([]byte(n.body), &b); err != nil {
		return core.Layer{}, err
	}
	if b.Members == nil {
		b.Members = []core.LayerMember{}
	}
	return core.Layer{Environment: env, Name: n.name, Salt: b.Salt, Members: b.Members, Version: n.version,
		CreatedAt: fromMicros(n.created), UpdatedAt: fromMicros(n.updated)}, nil
}

func (t *tx) Layers(env string) ([]core.Layer, error) { return namedAll(t, "layers", env, toLayer) }

func (t *tx) Layer(env, name string) (core.Layer, error) {
	n, err := t.namedOne("layers", "layer", env, name)
	if err != nil {
		return core.Layer{}, err
	}
	return toLayer(env, n)
}

func (t *tx) InsertLayer(l core.Layer) (core.Layer, error) {
	if err := t.namedInsert("layers", "layer", l.Environment, l.Name, layerBody{l.Salt, l.Members}); err != nil {
		return core.Layer{}, err
	}
	return t.Layer(l.Environment, l.Name)
}

func (t *tx) UpdateLayer(l core.Layer) (core.Layer, error) {
	if err := t.namedUpdate("layers", "layer", l.Environment, l.Name, l.Version, layerBody{l.Salt, l.Members}); err != nil {
		return core.Layer{}, err
	}
	return t.Layer(l.Environment, l.Name)
}

func (t *tx) DeleteLayer(env, name string, version int64) error {
	envID, _, err := t.env(env)
	if err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM layers WHERE environment_id = ? AND name = ? AND version = ?`, envID, name, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Errorf(core.ECONFLICT, "layer %q in %s was changed concurrently: reload and retry", name, env)
	}
	return nil
}

// ---- holdouts

type holdoutBody struct {
	Percent core.Percent       `json:"percent"`
	Global  bool               `json:"global,omitempty"`
	Flags   []core.HoldoutFlag `json:"flags"`
}

func toHoldout(env string, n named) (core.Holdout, error) {
	var b holdoutBody
	if err := json.Unmarshal([]byte(n.body), &b); err != nil {
		return core.Holdout{}, err
	}
	if b.Flags == nil {
		b.Flags = []core.HoldoutFlag{}
	}
	return core.Holdout{Environment: env, Key: n.name, Percent: b.Percent, Global: b.Global, Flags: b.Flags, Version: n.version,
		CreatedAt: fromMicros(n.created), UpdatedAt: fromMicros(n.updated)}, nil
}

func (t *tx) Holdouts(env string) ([]core.Holdout, error) {
	return namedAll(t, "holdouts", env, toHoldout)
}

func (t *tx) Holdout(env, key string) (core.Holdout, error) {
	n, err := t.namedOne("holdouts", "holdout", env, key)
	if err != nil {
		return core.Holdout{}, err
	}
	return toHoldout(env, n)
}

func (t *tx) InsertHoldout(h core.Holdout) (core.Holdout, error) {
	if err := t.namedInsert("holdouts", "holdout", h.Environment, h.Key, holdoutBody{h.Percent, h.Global, h.Flags}); err != nil {
		return core.Holdout{}, err
	}
	return t.Holdout(h.Environment, h.Key)
}

func (t *tx) UpdateHoldout(h core.Holdout) (core.Holdout, error) {
	if err := t.namedUpdate("holdouts", "holdout", h.Environment, h.Key, h.Version, holdoutBody{h.Percent, h.Global, h.Flags}); err != nil {
		return core.Holdout{}, err
	}
	return t.Holdout(h.Environment, h.Key)
}
