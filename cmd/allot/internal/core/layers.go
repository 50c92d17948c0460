package core

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Layers (issue 15, docs/layers-and-holdouts.md): a layer is a shard space
// of its own salt in one environment; each member experiment owns disjoint
// ranges of it, so no subject is in two experiments of one layer, whatever
// their flags. Publishing adds to each split of a member a shard on the
// layer's salt with the member's ranges (UFCFlag).
//
// The layout is stored, never recomputed from percentages: growing appends
// ranges (first those the member gave back most recently, so that shrinking
// then growing returns the same subjects; then free space nobody gave back;
// then the rest, lowest first); shrinking gives back ranges from the end of
// the member's list.

// Layer is a layer and its range layout.
type Layer struct {
	Environment string        `json:"environment"`
	Name        string        `json:"name"`
	Salt        string        `json:"salt"`
	Members     []LayerMember `json:"members"`
	// Free is the part no member owns, computed on read.
	Free      []Range   `json:"free"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// LayerMember is one experiment's part of a layer.
type LayerMember struct {
	Flag       string `json:"flag"`
	Allocation string `json:"allocation"`
	// Ranges are in the order they were taken; shrinking gives back from
	// the end.
	Ranges []Range `json:"ranges"`
	// Released are the ranges given back by shrinking, the latest last:
	// growing takes them back first while they are still free.
	Released []Range `json:"released,omitempty"`
}

// Share is the member's part of the layer.
func (m *LayerMember) Share() Percent { return Percent(rangeSet(m.Ranges).total()) }

// LayerPart is an experiment's membership as its allocation carries it. A
// client sets Name and Share; the core fills Salt and Ranges from the
// layer's stored layout (anything a client sends there is replaced).
type LayerPart struct {
	Name   string  `json:"name"`
	Share  Percent `json:"share"`
	Salt   string  `json:"salt,omitempty"`
	Ranges []Range `json:"ranges,omitempty"`
	// Rerandomize confirms that a running experiment joins the layer
	// although its subjects outside its part leave it (as confirming a
	// weight change does). It is consumed by the change, never stored.
	Rerandomize bool `json:"rerandomize,omitempty"`
}

// MaxLayers is the number of layers per environment, MaxLayerMembers the
// experiments per layer, MaxLayerRanges the ranges one member may hold
// (each is one more range in every split it publishes).
const (
	MaxLayers       = 100
	MaxLayerMembers = 100
	MaxLayerRanges  = 50
)

// pct formats basis points as a percentage.
func pct(bp int) string {
	b, _ := Percent(bp).MarshalJSON()
	return string(b) + " %"
}

func (l *Layer) member(flag, alloc string) int {
	return slices.IndexFunc(l.Members, func(m LayerMember) bool { return m.Flag == flag && m.Allocation == alloc })
}

// owned is the union of every member's ranges.
func (l *Layer) owned() rangeSet {
	var all []Range
	for _, m := range l.Members {
		all = append(all, m.Ranges...)
	}
	return normalize(all)
}

func (l *Layer) fillFree() {
	l.Free = rangeSet{{0, Whole}}.minus(l.owned())
}

// resize sets member i's share to want (basis points), growing or
// shrinking it by the rules above.
func (l *Layer) resize(i int, want int) error {
	m := &l.Members[i]
	have := rangeSet(m.Ranges).total()
	switch {
	case want > have:
		return l.grow(i, want-have)
	case want < have:
		m.shrink(have - want)
	}
	return nil
}

func (l *Layer) grow(i, need int) error {
	m := &l.Members[i]
	free := rangeSet{{0, Whole}}.minus(l.owned())
	if free.total() < need {
		return Errorf(ECONFLICT, "layer %s has %s free; experiment %s of flag %s needs %s more",
			l.Name, pct(free.total()), m.Allocation, m.Flag, pct(need))
	}
	var taken []Range
	add := func(rs []Range) {
		for _, r := range rs {
			taken = append(taken, r)
			free = free.minus(rangeSet{r})
			need -= r.size()
		}
	}
	// 1. What this member gave back, the latest first.
	for j := len(m.Released) - 1; j >= 0 && need > 0; j-- {
		add(normalize([]Range{m.Released[j]}).intersect(free).take(need))
	}
	// 2. Free space no other member gave back, lowest first.
	if need > 0 {
		var reserved []Range
		for k, o := range l.Members {
			if k != i {
				reserved = append(reserved, o.Released...)
			}
		}
		add(free.minus(normalize(reserved)).take(need))
	}
	// 3. The rest of the free space.
	if need > 0 {
		add(free.take(need))
	}
	got := normalize(taken)
	for k := range l.Members {
		l.Members[k].Released = subtractKeepOrder(l.Members[k].Released, got)
	}
	for _, r := range taken {
		if n := len(m.Ranges); n > 0 && m.Ranges[n-1].End == r.Start {
			m.Ranges[n-1].End = r.End
			continue
		}
		m.Ranges = append(m.Ranges, r)
	}
	if len(m.Ranges) > MaxLayerRanges {
		return Invalid("share", "experiment %s would hold %d separate ranges of layer %s; the limit is %d", m.Allocation, len(m.Ranges), l.Name, MaxLayerRanges)
	}
	return nil
}

func (m *LayerMember) shrink(give int) {
	for give > 0 && len(m.Ranges) > 0 {
		n := len(m.Ranges) - 1
		r := m.Ranges[n]
		back := r
		if r.size() > give {
			back.Start = r.End - give
			m.Ranges[n].End = back.Start
		} else {
			m.Ranges = m.Ranges[:n]
		}
		give -= back.size()
		if k := len(m.Released) - 1; k >= 0 && m.Released[k].Start == back.End {
			m.Released[k].Start = back.Start
		} else {
			m.Released = append(m.Released, back)
		}
	}
}

// subtractKeepOrder removes the shards of t from each range of list,
// keeping the list's order.
func subtractKeepOrder(list []Range, t rangeSet) []Range {
	var out []Range
	for _, r := range list {
		out = append(out, rangeSet{r}.minus(t)...)
	}
	return out
}

// ---- operations

// Layers lists the layers of env by name.
func (c *Core) Layers(ctx context.Context, env string) ([]Layer, error) {
	var out []Layer
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		out, err = tx.Layers(env)
		return err
	})
	for i := range out {
		out[i].fillFree()
	}
	return out, err
}

// Layer returns one layer with its layout.
func (c *Core) Layer(ctx context.Context, env, name string) (Layer, error) {
	var out Layer
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Layer(env, name)
		return err
	})
	out.fillFree()
	return out, err
}

// CreateLayer creates an empty layer in env with a fresh salt.
func (c *Core) CreateLayer(ctx context.Context, env, name string) (Layer, error) {
	if err := require(ctx, ActEdit, env); err != nil {
		return Layer{}, err
	}
	if err := checkKey("name", name); err != nil {
		return Layer{}, err
	}
	var out Layer
	err := c.store.Write(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		all, err := tx.Layers(env)
		if err != nil {
			return err
		}
		if len(all) >= MaxLayers {
			return Invalid("name", "environment %s has %d layers; the limit is %d", env, len(all), MaxLayers)
		}
		l := Layer{Environment: env, Name: name, Salt: "layer-" + name + "-" + c.newSalt(), Members: []LayerMember{}}
		if out, err = tx.InsertLayer(l); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "layer", name, env, nil, out)
	})
	out.fillFree()
	return out, err
}

// DeleteLayer deletes an empty layer; one with members is refused.
func (c *Core) DeleteLayer(ctx context.Context, env, name string) error {
	if err := require(ctx, ActEdit, env); err != nil {
		return err
	}
	return c.store.Write(ctx, func(tx Tx) error {
		l, err := tx.Layer(env, name)
		if err != nil {
			return err
		}
		if len(l.Members) > 0 {
			m := l.Members[0]
			return Errorf(ECONFLICT, "layer %s has %d experiments (%s of flag %s, ...): remove them from the layer first", name, len(l.Members), m.Allocation, m.Flag)
		}
		if err := tx.DeleteLayer(env, name, l.Version); err != nil {
			return err
		}
		return c.audit(ctx, tx, "delete", "layer", name, env, l, nil)
	})
}

// syncLayers brings the layers' stored layouts in line with a settings
// change (inside writeSettings' transaction) and fills each member
// allocation's salt and ranges from them. It refuses a running experiment
// joining or switching layers: that would unassign the subjects outside its
// part, unless the change confirms it (LayerPart.Rerandomize); then it says
// so in the warnings it returns.
func (c *Core) syncLayers(ctx context.Context, tx Tx, before, next *FlagSettings) ([]string, error) {
	var warnings []string
	err := c.syncLayersInto(ctx, tx, before, next, &warnings)
	return warnings, err
}

func (c *Core) syncLayersInto(ctx context.Context, tx Tx, before, next *FlagSettings, warnings *[]string) error {
	old := make(map[string]*Allocation, len(before.Allocations))
	for i := range before.Allocations {
		old[before.Allocations[i].Key] = &before.Allocations[i]
	}
	layers := map[string]*Layer{}
	touched := map[string]Layer{} // name -> layer before the change
	load := func(name string) (*Layer, error) {
		if l, ok := layers[name]; ok {
			return l, nil
		}
		l, err := tx.Layer(next.Environment, name)
		if err != nil {
			if ErrorCode(err) == ENOTFOUND {
				return nil, Invalid("layer", "no layer %q in %s", name, next.Environment)
			}
			return nil, err
		}
		layers[name] = &l
		return &l, nil
	}
	mark := func(l *Layer) {
		if _, ok := touched[l.Name]; !ok {
			b := *l
			b.Members = slices.Clone(l.Members)
			touched[l.Name] = b
		}
	}
	inNext := map[string]string{}
	for i := range next.Allocations {
		a := &next.Allocations[i]
		if a.Layer != nil {
			inNext[a.Key] = a.Layer.Name
		}
	}
	// Leave: allocations gone, or out of their old layer.
	for _, p := range before.Allocations {
		if p.Layer == nil || inNext[p.Key] == p.Layer.Name {
			continue
		}
		l, err := load(p.Layer.Name)
		if err != nil {
			return err
		}
		if k := l.member(next.Flag, p.Key); k >= 0 {
			mark(l)
			l.Members = slices.Delete(l.Members, k, k+1)
		}
	}
	// Join or resize.
	for i := range next.Allocations {
		a := &next.Allocations[i]
		if a.Layer == nil {
			continue
		}
		field := fmt.Sprintf("allocations[%d].layer", i)
		if a.Type != Experiment {
			return Invalid(field, "only an experiment can join a layer")
		}
		if a.Layer.Share < 100 || a.Layer.Share > Whole {
			return Invalid(field+".share", "must be from 1 to 100 percent of the layer")
		}
		l, err := load(a.Layer.Name)
		if err != nil {
			return err
		}
		k := l.member(next.Flag, a.Key)
		if k < 0 {
			if p := old[a.Key]; p != nil && p.Type == Experiment && p.Status == Running {
				if !a.Layer.Rerandomize {
					return Errorf(ECONFLICT, "experiment %s is running: joining layer %s would unassign its subjects outside its part of the layer; confirm the re-randomization (rerandomize), stop it first, or create a new experiment in the layer", a.Key, l.Name)
				}
				*warnings = append(*warnings, fmt.Sprintf("experiment %s joined layer %s while running: its subjects outside its part of the layer are no longer assigned", a.Key, l.Name))
			}
			if len(l.Members) >= MaxLayerMembers {
				return Invalid(field, "layer %s has %d experiments; the limit is %d", l.Name, len(l.Members), MaxLayerMembers)
			}
			mark(l)
			l.Members = append(l.Members, LayerMember{Flag: next.Flag, Allocation: a.Key, Ranges: []Range{}})
			k = len(l.Members) - 1
		}
		if int(a.Layer.Share) != rangeSet(l.Members[k].Ranges).total() {
			mark(l)
			if err := l.resize(k, int(a.Layer.Share)); err != nil {
				return err
			}
		}
		m := l.Members[k]
		a.Layer.Rerandomize = false
		a.Layer.Salt = l.Salt
		a.Layer.Ranges = normalize(m.Ranges)
	}
	names := make([]string, 0, len(touched))
	for n := range touched {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b := touched[n]
		after, err := tx.UpdateLayer(*layers[n])
		if err != nil {
			return err
		}
		after.fillFree()
		b.fillFree()
		if err := c.audit(ctx, tx, "update", "layer", n, next.Environment, b, after); err != nil {
			return err
		}
	}
	return nil
}

// layerWarnings says what a layer change does to subjects.
func layerWarnings(before, next *FlagSettings) []string {
	old := make(map[string]*Allocation, len(before.Allocations))
	for i := range before.Allocations {
		old[before.Allocations[i].Key] = &before.Allocations[i]
	}
	var out []string
	for _, a := range next.Allocations {
		p := old[a.Key]
		if a.Layer == nil || p == nil || p.Layer == nil || p.Layer.Name != a.Layer.Name {
			continue
		}
		if a.Layer.Share < p.Layer.Share && a.Status == Running {
			out = append(out, fmt.Sprintf("experiment %s: shrinking its part of layer %s unassigns the subjects of the part given back; growing it again brings back the same subjects while that part stays free", a.Key, a.Layer.Name))
		}
	}
	return out
}
