package core

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// An audit entry keeps the whole thing on create (after) and delete
// (before). An update keeps only what changed: Before and After are then
// objects from a path ("allocations[0].traffic") to the value there, and a
// long list of strings that gained or lost items is kept as the items
// removed (in Before) and added (in After) under the path with " (set)"
// appended (their order does not matter to the engine). Editing one allocation of a flag that targets 250,000 ids thus
// costs bytes, not megabytes, per entry.

// boringFields change on every write and say nothing.
var boringFields = map[string]bool{"updatedAt": true, "createdAt": true, "version": true}

// setDiffMin is the length from which lists of strings are diffed as sets.
const setDiffMin = 32

func newAuditEntry(actor, action, entity, key, env string, before, after any) (AuditEntry, error) {
	e := AuditEntry{Actor: actor, Action: action, Entity: entity, Key: key, Environment: env}
	enc := func(v any) (json.RawMessage, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(before)
	if err != nil {
		return e, err
	}
	a, err := enc(after)
	if err != nil {
		return e, err
	}
	if b == nil || a == nil {
		e.Before, e.After = b, a
		return e, nil
	}
	var bv, av any
	if err := json.Unmarshal(b, &bv); err != nil {
		return e, err
	}
	if err := json.Unmarshal(a, &av); err != nil {
		return e, err
	}
	db, da := map[string]any{}, map[string]any{}
	diffJSON("", bv, av, db, da)
	if e.Before, err = json.Marshal(db); err != nil {
		return e, err
	}
	e.After, err = json.Marshal(da)
	return e, err
}

func diffJSON(path string, b, a any, db, da map[string]any) {
	bm, bok := b.(map[string]any)
	am, aok := a.(map[string]any)
	if bok && aok {
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if boringFields[k] {
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffJSON(p, bm[k], am[k], db, da)
		}
		return
	}
	bl, bok := b.([]any)
	al, aok := a.([]any)
	if bok && aok {
		if removed, added, ok := setDiff(bl, al); ok {
			if len(removed)+len(added) > 0 {
				db[path+" (set)"], da[path+" (set)"] = removed, added
			}
			return
		}
		if len(bl) == len(al) {
			for i := range bl {
				diffJSON(fmt.Sprintf("%s[%d]", path, i), bl[i], al[i], db, da)
			}
			return
		}
	}
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	if string(bj) == string(aj) {
		return
	}
	if path == "" {
		path = "value"
	}
	db[path], da[path] = b, a
}

// setDiff compares two long lists of strings as sets.
func setDiff(b, a []any) (removed, added []string, ok bool) {
	if max(len(b), len(a)) < setDiffMin {
		return nil, nil, false
	}
	in := func(l []any) (map[string]bool, bool) {
		m := make(map[string]bool, len(l))
		for _, v := range l {
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			m[s] = true
		}
		return m, true
	}
	bs, ok1 := in(b)
	as, ok2 := in(a)
	if !ok1 || !ok2 {
		return nil, nil, false
	}
	removed, added = []string{}, []string{}
	for _, v := range b {
		if s := v.(string); !as[s] {
			removed = append(removed, s)
		}
	}
	for _, v := range a {
		if s := v.(string); !bs[s] {
			added = append(added, s)
		}
	}
	return removed, added, true
}

// AuditPage is one page of the audit log, newest first. Next, when not
// zero, is the Before of the next (older) page.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    int64        `json:"next,omitempty"`
}

// Audit returns up to limit entries (default 100, at most MaxAuditLimit)
// older than the entry with ID before (0: from the newest), and no more
// than MaxAuditPageBytes of them: a page ends early rather than grow
// without bound, and says where the next one starts.
func (c *Core) Audit(ctx context.Context, limit int, before int64) (AuditPage, error) {
	if limit == 0 {
		limit = defaultAuditLimit
	}
	if limit < 0 || limit > MaxAuditLimit {
		return AuditPage{}, Invalid("limit", "must be from 1 to %d", MaxAuditLimit)
	}
	if before < 0 {
		return AuditPage{}, Invalid("before", "must be an entry id")
	}
	var out AuditPage
	err := c.store.Read(ctx, func(tx Tx) error {
		// One more than asked tells whether an older page exists.
		entries, err := tx.Audit(limit+1, before, MaxAuditPageBytes)
		if err != nil {
			return err
		}
		more := len(entries) > limit
		if more {
			entries = entries[:limit]
		} else if len(entries) > 0 && entries[len(entries)-1].ID > 1 {
			// A page cut short by its size: there may be older entries.
			older, err := tx.Audit(1, entries[len(entries)-1].ID, 1)
			if err != nil {
				return err
			}
			more = len(older) > 0
		}
		out.Entries = entries
		if more && len(entries) > 0 {
			out.Next = entries[len(entries)-1].ID
		}
		return nil
	})
	if out.Entries == nil {
		out.Entries = []AuditEntry{}
	}
	return out, err
}
