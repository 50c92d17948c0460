package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Change is the result of a write to a flag's settings in an environment:
// the settings before and after, and what the change does to subjects, for
// every front end to show.
type Change struct {
	Before, After FlagSettings
	Warnings      []string
}

// FlagSettings returns a flag's settings in an environment.
func (c *Core) FlagSettings(ctx context.Context, env, flag string) (FlagSettings, error) {
	var out FlagSettings
	err := c.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.Flag(flag, false); err != nil {
			return err
		}
		var err error
		out, err = tx.Settings(env, flag)
		return err
	})
	return out, err
}

// UpdateSettings replaces a flag's settings in an environment. s.Version
// must be the version the caller read (0 if never written). Salts of
// allocations that already existed (same key) are kept; new allocations get
// fresh random salts.
func (c *Core) UpdateSettings(ctx context.Context, s FlagSettings) (Change, error) {
	if err := require(ctx, ActEdit, s.Environment); err != nil {
		return Change{}, err
	}
	var ch Change
	err := c.store.Write(ctx, func(tx Tx) (err error) {
		ch, err = c.writeSettings(ctx, tx, s, nil)
		return err
	})
	if err == nil {
		c.changed(s.Environment, s.Flag)
	}
	return ch, err
}

// Edit changes a flag's settings in env with fn, applied to the settings
// as they are in the transaction, provided they are still at version (the
// version the caller read). Every allocation operation below is an Edit.
func (c *Core) Edit(ctx context.Context, env, flag string, version int64, fn func(*FlagSettings) error) (Change, error) {
	if err := require(ctx, ActEdit, env); err != nil {
		return Change{}, err
	}
	s := FlagSettings{Environment: env, Flag: flag, Version: version}
	var ch Change
	err := c.store.Write(ctx, func(tx Tx) (err error) {
		ch, err = c.writeSettings(ctx, tx, s, fn)
		return err
	})
	if err == nil {
		c.changed(env, flag)
	}
	return ch, err
}

// writeSettings is the one path by which settings are written. Inside tx,
// it locks the flag row (so that a concurrent change of the flag's
// variations cannot slip between this validation and the commit), checks
// the version, applies edit to the current settings (or takes next
// whole), applies the product's rules, validates the result through the
// engine, writes it, and appends the audit entry.
func (c *Core) writeSettings(ctx context.Context, tx Tx, next FlagSettings, edit func(*FlagSettings) error) (Change, error) {
	return c.writeSettingsWith(ctx, tx, next, edit, false)
}

// writeSettingsWith is writeSettings; holdouts lets edit change the
// holdout an allocation carries (only the holdout operations may).
func (c *Core) writeSettingsWith(ctx context.Context, tx Tx, next FlagSettings, edit func(*FlagSettings) error, holdouts bool) (Change, error) {
	if err := require(ctx, ActEdit, next.Environment); err != nil {
		return Change{}, err
	}
	var ch Change
	if _, err := tx.Environment(next.Environment); err != nil {
		return ch, err
	}
	f, err := tx.Flag(next.Flag, true)
	if err != nil {
		return ch, err
	}
	if err := checkArchived(&f); err != nil {
		return ch, err
	}
	before, err := tx.Settings(next.Environment, next.Flag)
	if err != nil {
		return ch, err
	}
	if before.Version != next.Version {
		return ch, Errorf(ECONFLICT, "settings of flag %q in %s are at version %d, not %d: reload and retry", next.Flag, next.Environment, before.Version, next.Version)
	}
	if edit != nil {
		next = before
		next.Allocations = slices.Clone(before.Allocations)
		if err := edit(&next); err != nil {
			return ch, err
		}
	}
	if next.Allocations == nil {
		next.Allocations = []Allocation{}
	}
	if err := keepImported(ctx, next.Allocations, before.Allocations); err != nil {
		return ch, err
	}
	if err := checkSettings(&next, &f); err != nil {
		return ch, err
	}
	c.keepSalts(next.Allocations, before.Allocations)
	if !holdouts {
		keepHoldouts(next.Allocations, before.Allocations)
	}
	if err := checkHoldoutRemoval(&before, &next); err != nil {
		return ch, err
	}
	if !holdouts {
		if err := c.coverNew(ctx, tx, &f, &before, &next); err != nil {
			return ch, err
		}
	}
	joined, err := c.syncLayers(ctx, tx, &before, &next)
	if err != nil {
		return ch, err
	}
	ch.Warnings = append(append(applyRules(&before, &next), layerWarnings(&before, &next)...), joined...)
	if err := checkIn(ctx, &f, &next); err != nil {
		return ch, err
	}
	after, err := tx.PutSettings(next)
	if err != nil {
		return ch, err
	}
	if err := tx.Bump(next.Environment); err != nil {
		return ch, err
	}
	if err := c.audit(ctx, tx, "update", "flag_settings", next.Flag, next.Environment, before, after); err != nil {
		return ch, err
	}
	ch.Before, ch.After = before, after
	return ch, nil
}

// applyRules applies the product's rules to a settings change and says
// what the change does to subjects (docs/rules.md):
//   - starting an experiment (it was not running, now it is) in a flag that
//     is off turns the flag on: whoever starts it wants subjects assigned;
//   - changing an experiment's weights re-randomizes it;
//   - lowering an experiment's traffic unassigns some subjects.
func applyRules(before, next *FlagSettings) []string {
	old := make(map[string]*Allocation, len(before.Allocations))
	for i := range before.Allocations {
		old[before.Allocations[i].Key] = &before.Allocations[i]
	}
	var out []string
	for _, a := range next.Allocations {
		if a.Type != Experiment {
			continue
		}
		p := old[a.Key]
		started := a.Status == Running && (p == nil || p.Type != Experiment || p.Status != Running)
		if started && !next.Enabled {
			next.Enabled = true
			out = append(out, fmt.Sprintf("experiment %s started, so flag %s is now on in %s: subjects are assigned", a.Key, next.Flag, next.Environment))
		}
		if p == nil || p.Type != Experiment {
			continue
		}
		if !slices.Equal(weightList(p.Weights), weightList(a.Weights)) {
			out = append(out, fmt.Sprintf("experiment %s: changing weights re-randomizes it; subjects already assigned may now get another variation", a.Key))
		}
		if a.Traffic < p.Traffic {
			out = append(out, fmt.Sprintf("experiment %s: lowering traffic unassigns some subjects; raising it again brings back exactly the same subjects", a.Key))
		}
		if p.Status == Running && a.Status == Running && !sameRules(p.Rules, a.Rules) {
			out = append(out, fmt.Sprintf("experiment %s: changing the rules of a running experiment changes which subjects it takes; those who no longer match leave it", a.Key))
		}
	}
	return out
}

// sameRules reports whether two rule lists are the same, as stored.
func sameRules(a, b []Rule) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func weightList(ws []Weight) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		if w.Weight > 0 {
			out = append(out, w.Variation+"="+strconv.Itoa(int(w.Weight)))
		}
	}
	slices.Sort(out)
	return out
}

// keepSalts gives each allocation the salts of the previous allocation with
// the same key, and new random salts where it has none. A client cannot
// choose salts.
func (c *Core) keepSalts(next, prev []Allocation) {
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
				a.TrafficSalt = c.newSalt()
			}
			if a.SplitSalt == "" {
				a.SplitSalt = c.newSalt()
			}
		case Rollout:
			if a.SplitSalt == "" {
				a.SplitSalt = c.newSalt()
			}
		}
	}
}

// keepHoldouts gives each experiment the holdout of the previous
// allocation with the same key: a client cannot set or drop it.
func keepHoldouts(next, prev []Allocation) {
	old := make(map[string]*HoldoutPart, len(prev))
	for i := range prev {
		old[prev[i].Key] = prev[i].Holdout
	}
	for i := range next {
		next[i].Holdout = nil
		if h := old[next[i].Key]; h != nil && next[i].Type == Experiment {
			c := *h
			next[i].Holdout = &c
		}
	}
}

func findAllocation(s *FlagSettings, key string) (int, error) {
	i := slices.IndexFunc(s.Allocations, func(a Allocation) bool { return a.Key == key })
	if i < 0 {
		return -1, Errorf(ENOTFOUND, "allocation %q not found in %s", key, s.Environment)
	}
	return i, nil
}

// AddAllocation inserts a at position pos (-1: at the end).
func (c *Core) AddAllocation(ctx context.Context, env, flag string, version int64, a Allocation, pos int) (Change, error) {
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		if pos < 0 {
			pos = len(s.Allocations)
		}
		if pos > len(s.Allocations) {
			return Invalid("position", "must be from 0 to %d", len(s.Allocations))
		}
		s.Allocations = slices.Insert(s.Allocations, pos, a)
		return nil
	})
}

// AllocationPatch is the fields of an allocation to change; nil fields
// stay as they are.
type AllocationPatch struct {
	Status    *string    `json:"status,omitempty"`
	Traffic   *Percent   `json:"traffic,omitempty"`
	Weights   *[]Weight  `json:"weights,omitempty"`
	Percent   *Percent   `json:"percent,omitempty"`
	Variation *string    `json:"variation,omitempty"`
	Rules     *[]Rule    `json:"rules,omitempty"`
	StartAt   *time.Time `json:"startAt,omitempty"`
	EndAt     *time.Time `json:"endAt,omitempty"`
	DoLog     *bool      `json:"doLog,omitempty"`
	// Layer joins a layer or changes the experiment's share of it;
	// LeaveLayer takes it out of its layer.
	Layer      *LayerPart `json:"layer,omitempty"`
	LeaveLayer bool       `json:"leaveLayer,omitempty"`
}

// PatchAllocation changes the fields p sets of allocation alloc. Setting
// an experiment's status to running starts it (and turns the flag on).
func (c *Core) PatchAllocation(ctx context.Context, env, flag, alloc string, version int64, p AllocationPatch) (Change, error) {
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		i, err := findAllocation(s, alloc)
		if err != nil {
			return err
		}
		a := s.Allocations[i]
		if p.Status != nil {
			a.Status = *p.Status
		}
		if p.Traffic != nil {
			a.Traffic = *p.Traffic
		}
		if p.Weights != nil {
			a.Weights = *p.Weights
		}
		if p.Percent != nil {
			a.Percent = *p.Percent
		}
		if p.Variation != nil {
			a.Variation = *p.Variation
		}
		if p.Rules != nil {
			a.Rules = *p.Rules
		}
		if p.StartAt != nil {
			a.StartAt = p.StartAt
		}
		if p.EndAt != nil {
			a.EndAt = p.EndAt
		}
		if p.DoLog != nil {
			a.DoLog = p.DoLog
		}
		if p.Layer != nil {
			l := *p.Layer
			a.Layer = &l
		}
		if p.LeaveLayer {
			a.Layer = nil
		}
		s.Allocations[i] = a
		return nil
	})
}

// SetStatus starts (running) or stops (stopped) an experiment.
func (c *Core) SetStatus(ctx context.Context, env, flag, alloc string, version int64, status string) (Change, error) {
	if status != Running && status != Stopped {
		return Change{}, Invalid("status", "must be running or stopped")
	}
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		i, err := findAllocation(s, alloc)
		if err != nil {
			return err
		}
		if s.Allocations[i].Type != Experiment {
			return Invalid(fmt.Sprintf("allocations[%d].status", i), "only experiments are started and stopped")
		}
		s.Allocations[i].Status = status
		return nil
	})
}

// RemoveAllocation removes allocation alloc.
func (c *Core) RemoveAllocation(ctx context.Context, env, flag, alloc string, version int64) (Change, error) {
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		i, err := findAllocation(s, alloc)
		if err != nil {
			return err
		}
		s.Allocations = slices.Delete(s.Allocations, i, i+1)
		return nil
	})
}

// SetEnabled turns a flag on or off in env.
func (c *Core) SetEnabled(ctx context.Context, env, flag string, version int64, on bool) (Change, error) {
	return c.Edit(ctx, env, flag, version, func(s *FlagSettings) error {
		s.Enabled = on
		return nil
	})
}
