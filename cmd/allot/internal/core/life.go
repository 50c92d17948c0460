package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The whole life of a flag (issue 17): archiving and restoring it, moving
// and replacing allocations, copying settings between environments, and
// the diff a front end shows before a copy.

// ArchiveFlag archives a flag: it keeps its definition, settings and
// history, but no environment publishes it any more (SDKs get their
// defaults, as for an unknown flag). version must be the version the
// caller read. A flag with a running experiment, or with an experiment in
// a layer or a holdout, is refused with the reason: stop it or take it out
// first, so that archiving never silently ends an experiment.
func (c *Core) ArchiveFlag(ctx context.Context, key string, version int64) (Flag, error) {
	return c.setArchived(ctx, key, version, true)
}

// RestoreFlag brings an archived flag back: every environment publishes it
// again with the settings it had.
func (c *Core) RestoreFlag(ctx context.Context, key string, version int64) (Flag, error) {
	return c.setArchived(ctx, key, version, false)
}

func (c *Core) setArchived(ctx context.Context, key string, version int64, archive bool) (Flag, error) {
	// Archiving unpublishes the flag in every environment.
	if err := require(ctx, ActEdit, ""); err != nil {
		return Flag{}, err
	}
	var out Flag
	err := c.store.Write(ctx, func(tx Tx) error {
		before, err := tx.Flag(key, true)
		if err != nil {
			return err
		}
		if before.Version != version {
			return Errorf(ECONFLICT, "flag %q is at version %d, not %d: reload and retry", key, before.Version, version)
		}
		switch {
		case archive && before.ArchivedAt != nil:
			return Errorf(ECONFLICT, "flag %q is already archived", key)
		case !archive && before.ArchivedAt == nil:
			return Errorf(ECONFLICT, "flag %q is not archived", key)
		}
		next := before
		action := "restore"
		if archive {
			action = "archive"
			all, err := tx.AllSettings(key)
			if err != nil {
				return err
			}
			for _, s := range all {
				for _, a := range s.Allocations {
					switch {
					case a.Type == Experiment && a.Status == Running:
						return Errorf(ECONFLICT, "experiment %s of flag %s is running in %s: stop it before archiving the flag", a.Key, key, s.Environment)
					case a.Layer != nil:
						return Errorf(ECONFLICT, "experiment %s of flag %s is in layer %s in %s: take it out of the layer first", a.Key, key, a.Layer.Name, s.Environment)
					case a.Holdout != nil:
						return Errorf(ECONFLICT, "experiment %s of flag %s is in holdout %s in %s: a holdout's experiments cannot be archived", a.Key, key, a.Holdout.Key, s.Environment)
					}
				}
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			next.ArchivedAt = &now
		} else {
			next.ArchivedAt = nil
		}
		if out, err = tx.UpdateFlag(next); err != nil {
			return err
		}
		if err := tx.Bump(""); err != nil {
			return err
		}
		return c.audit(ctx, tx, action, "flag", key, "", before, out)
	})
	if err == nil {
		c.changed("", key)
	}
	return out, err
}

// checkArchived refuses changes to the settings of an archived flag: they
// would not be published, and restoring it should bring back what it had.
func checkArchived(f *Flag) error {
	if f.ArchivedAt != nil {
		return Errorf(ECONFLICT, "flag %q is archived: restore it before changing its settings", f.Key)
	}
	return nil
}

// checkRunningValues refuses a change of the value of a variation that a
// running experiment assigns: the subjects already assigned would start
// getting something else mid-experiment and its results would mean
// nothing. Add a new variation instead, or stop the experiment first.
func checkRunningValues(before, next *Flag, settings []FlagSettings) error {
	old := make(map[string]string, len(before.Variations))
	for _, v := range before.Variations {
		old[v.Key] = string(v.Value)
	}
	for _, v := range next.Variations {
		was, ok := old[v.Key]
		if !ok || was == string(v.Value) {
			continue
		}
		for _, s := range settings {
			for _, a := range s.Allocations {
				if a.Type != Experiment || a.Status != Running {
					continue
				}
				for _, w := range a.Weights {
					if w.Variation == v.Key && w.Weight > 0 {
						return Invalid("variations", "experiment %s is running in %s and assigns %s: changing its value would change what its subjects get mid-experiment; stop the experiment or add a new variation", a.Key, s.Environment, v.Key)
					}
				}
			}
		}
	}
	return nil
}

// MoveAllocation moves allocation alloc to position pos (0 first); the
// first allocation that takes a subject decides, so order matters.
func (c *Core) MoveAllocation(ctx context.Context, env, flag, alloc string, version int64, pos int) (Change, error) {
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		i, err := findAllocation(s, alloc)
		if err != nil {
			return err
		}
		if pos < 0 || pos >= len(s.Allocations) {
			return Invalid("position", "must be from 0 to %d", len(s.Allocations)-1)
		}
		a := s.Allocations[i]
		s.Allocations = slices.Insert(slices.Delete(s.Allocations, i, i+1), pos, a)
		return nil
	})
}

// ReplaceAllocation replaces allocation alloc with a, in place. The key
// cannot change (the salts, and so every assignment, belong to it): a.Key
// must be alloc or empty. Unlike PatchAllocation, fields a leaves empty
// are cleared (a schedule removed, rules dropped).
func (c *Core) ReplaceAllocation(ctx context.Context, env, flag, alloc string, version int64, a Allocation) (Change, error) {
	if a.Key == "" {
		a.Key = alloc
	}
	if a.Key != alloc {
		return Change{}, Invalid("key", "cannot change (%s to %s): the key carries the allocation's salts; add a new allocation instead", alloc, a.Key)
	}
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		i, err := findAllocation(s, alloc)
		if err != nil {
			return err
		}
		s.Allocations[i] = a
		return nil
	})
}

// CopyFlagSettings makes a flag's settings in environment to those it has
// in from: on or off, and the same allocations in the same order.
// toVersion must be the version of the settings in to that the caller
// read (0 if never written), so that the copy applies exactly the diff
// that was shown (DiffSettings). Allocations already in to under the same
// key keep their salts (their subjects stay put); new ones get fresh
// salts, as every new allocation does. Layers and holdouts are per
// environment: the source's are not copied, and an experiment already in
// the target keeps its own.
func (c *Core) CopyFlagSettings(ctx context.Context, flag, from, to string, toVersion int64) (Change, error) {
	if from == to {
		return Change{}, Invalid("to", "is the environment copied from")
	}
	var ch Change
	err := c.store.Write(ctx, func(tx Tx) error {
		if _, err := tx.Environment(from); err != nil {
			return err
		}
		src, err := tx.Settings(from, flag)
		if err != nil {
			return err
		}
		ch, err = c.writeSettings(ctx, tx, FlagSettings{Flag: flag, Environment: to, Version: toVersion}, func(s *FlagSettings) error {
			// An experiment already in the target keeps its part of a
			// layer there (writeSettings keeps holdouts the same way).
			layers := make(map[string]*LayerPart, len(s.Allocations))
			for _, a := range s.Allocations {
				layers[a.Key] = a.Layer
			}
			s.Enabled = src.Enabled
			s.Allocations = make([]Allocation, len(src.Allocations))
			for i, a := range src.Allocations {
				a.Layer, a.Holdout = nil, nil
				if l := layers[a.Key]; l != nil && a.Type == Experiment {
					part := *l
					a.Layer = &part
				}
				s.Allocations[i] = a
			}
			return nil
		})
		return err
	})
	if err == nil {
		c.changed(to, flag)
	}
	return ch, err
}

// Difference is one line of a settings diff: what is at Path in the
// settings copied to (Before) and what a copy puts there (After), as
// compact JSON; "" where there is nothing.
type Difference struct {
	Path   string `json:"path"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// DiffSettings says what changes when the settings next replace before:
// on/off, the order of allocations, each allocation added or removed
// (whole), and each field changed of those in both (matched by key).
// Salts, versions and times are left out: a copy does not carry them.
func DiffSettings(before, next FlagSettings) []Difference {
	var out []Difference
	js := func(v any) string {
		if v == nil {
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	if before.Enabled != next.Enabled {
		out = append(out, Difference{Path: "enabled", Before: js(before.Enabled), After: js(next.Enabled)})
	}
	keys := func(s FlagSettings) []string {
		k := make([]string, len(s.Allocations))
		for i, a := range s.Allocations {
			k[i] = a.Key
		}
		return k
	}
	bk, nk := keys(before), keys(next)
	if !slices.Equal(bk, nk) {
		out = append(out, Difference{Path: "order", Before: js(bk), After: js(nk)})
	}
	plain := func(a Allocation) map[string]any {
		a.TrafficSalt, a.SplitSalt, a.Layer, a.Holdout = "", "", nil, nil
		var m map[string]any
		b, _ := json.Marshal(a)
		json.Unmarshal(b, &m)
		return m
	}
	old := make(map[string]Allocation, len(before.Allocations))
	for _, a := range before.Allocations {
		old[a.Key] = a
	}
	seen := map[string]bool{}
	for _, a := range next.Allocations {
		seen[a.Key] = true
		p, ok := old[a.Key]
		if !ok {
			out = append(out, Difference{Path: fmt.Sprintf("allocation %s", a.Key), After: js(plain(a))})
			continue
		}
		db, da := map[string]any{}, map[string]any{}
		diffJSON("", plain(p), plain(a), db, da)
		paths := make([]string, 0, len(db))
		for k := range db {
			paths = append(paths, k)
		}
		slices.Sort(paths)
		for _, k := range paths {
			out = append(out, Difference{Path: fmt.Sprintf("allocation %s: %s", a.Key, k), Before: js(db[k]), After: js(da[k])})
		}
	}
	for _, a := range before.Allocations {
		if !seen[a.Key] {
			out = append(out, Difference{Path: fmt.Sprintf("allocation %s", a.Key), Before: js(plain(a))})
		}
	}
	return out
}
