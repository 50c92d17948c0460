package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// Statuses shown in the list, in filter order.
var statuses = []string{"RUNNING", "STOPPED", "DRAFT", "OFF"}

// flagStatus is a flag's status in an environment: DRAFT when it is off
// with a draft experiment first, OFF when it is off (or has nothing to
// serve), else its first experiment's status; a flag with no experiment
// that serves something is RUNNING.
func flagStatus(s core.FlagSettings) string {
	if !s.Enabled && len(s.Allocations) > 0 && s.Allocations[0].Type == core.Experiment && s.Allocations[0].Status == core.Draft {
		// Created, never started: starting it turns the flag on.
		return "DRAFT"
	}
	if !s.Enabled || len(s.Allocations) == 0 {
		return "OFF"
	}
	for _, a := range s.Allocations {
		if a.Type == core.Experiment {
			return strings.ToUpper(a.Status)
		}
	}
	return "RUNNING"
}

// trafficOf is the share of subjects a flag's first experiment (or first
// rollout) admits.
func trafficOf(s core.FlagSettings) string {
	for _, a := range s.Allocations {
		switch a.Type {
		case core.Experiment:
			return pct(a.Traffic)
		case core.Rollout:
			return pct(a.Percent) + " (rollout)"
		case core.Imported:
			return "imported"
		}
	}
	if len(s.Allocations) > 0 {
		return "targeted"
	}
	return "—"
}

type flagRow struct {
	Key, Description, Type, Status, Traffic, Owner string
	Tags                                           []string
	Changed                                        time.Time
}

type listData struct {
	Q, Status, Type, Tag, Owner string
	Statuses, Types, Tags       []string
	Owners                      []string
	Rows                        []flagRow
	Total                       int
}

// archived is the status an archived flag has in every environment.
const archived = "ARCHIVED"

func (u *UI) listFlags(w http.ResponseWriter, r *http.Request, p *page) error {
	cfg, err := u.core.EnvironmentConfig(r.Context(), p.Env)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	query := r.URL.Query()
	status := strings.ToUpper(query.Get("status"))
	if !slices.Contains(statuses, status) && status != archived {
		status = ""
	}
	d := listData{Q: q, Status: status, Statuses: append(slices.Clone(statuses), archived), Types: variationTypes,
		Type: strings.ToUpper(query.Get("type")), Tag: strings.TrimSpace(query.Get("tag")), Owner: strings.TrimSpace(query.Get("owner")),
		Total: len(cfg.Flags)}
	tags, owners := map[string]bool{}, map[string]bool{}
	for _, fc := range cfg.Flags {
		row := flagRow{Key: fc.Flag.Key, Description: fc.Flag.Description, Type: string(fc.Flag.VariationType),
			Status: flagStatus(fc.Settings), Traffic: trafficOf(fc.Settings), Changed: fc.Flag.UpdatedAt,
			Tags: fc.Flag.Tags, Owner: fc.Flag.Owner}
		if !fc.Flag.Published() {
			row.Status = archived
		}
		for _, t := range row.Tags {
			tags[t] = true
		}
		if row.Owner != "" {
			owners[row.Owner] = true
		}
		if fc.Settings.UpdatedAt.After(row.Changed) {
			row.Changed = fc.Settings.UpdatedAt
		}
		if q != "" && !strings.Contains(strings.ToLower(row.Key+" "+row.Description+" "+row.Owner+" "+strings.Join(row.Tags, " ")), strings.ToLower(q)) {
			continue
		}
		// Archived flags are listed only when asked for.
		if status != row.Status && (status != "" || row.Status == archived) {
			continue
		}
		if d.Type != "" && row.Type != d.Type {
			continue
		}
		if d.Tag != "" && !slices.Contains(row.Tags, d.Tag) {
			continue
		}
		if d.Owner != "" && row.Owner != d.Owner {
			continue
		}
		d.Rows = append(d.Rows, row)
	}
	d.Tags = slices.Sorted(maps.Keys(tags))
	d.Owners = slices.Sorted(maps.Keys(owners))
	p.Title, p.Nav, p.Data = "Flags and experiments", "flags", d
	u.render(w, r, "flags", p)
	return nil
}

// ---- creating an experiment

const (
	formVariations = 4
	formConditions = 4
)

var variationTypes = []string{string(ufc.TypeString), string(ufc.TypeBoolean), string(ufc.TypeInteger), string(ufc.TypeNumeric), string(ufc.TypeJSON)}

type operator struct{ Value, Label string }

// operators are every UFC operator, with how the value is written.
var operators = []operator{
	{ufc.OpOneOf, "is one of (comma-separated)"},
	{ufc.OpNotOneOf, "is none of (comma-separated)"},
	{ufc.OpMatches, "matches the regular expression"},
	{ufc.OpNotMatches, "does not match the regular expression"},
	{ufc.OpGT, "is greater than (number or version)"},
	{ufc.OpGTE, "is at least (number or version)"},
	{ufc.OpLT, "is less than (number or version)"},
	{ufc.OpLTE, "is at most (number or version)"},
	{ufc.OpIsNull, "is missing (true) / present (false)"},
}

type varRow struct{ Key, Value, Weight string }

type condRow struct{ Rule, Attr, Op, Value string }

type flagForm struct {
	Key, Description, Type, Traffic, Start, End string
	Vars                                        []varRow
	Conds                                       []condRow
	Types                                       []string
	Operators                                   []operator
	// where each sent variation and condition came from in the form
	varRow  []int
	condRow [][]int
}

func newFlagForm() *flagForm {
	f := &flagForm{Type: string(ufc.TypeString), Traffic: "10", Types: variationTypes, Operators: operators,
		Vars: make([]varRow, formVariations), Conds: make([]condRow, formConditions)}
	f.Vars[0] = varRow{Key: "control", Value: "control", Weight: "50"}
	f.Vars[1] = varRow{Key: "treatment", Value: "treatment", Weight: "50"}
	for i := range f.Conds {
		f.Conds[i].Rule = "1"
	}
	return f
}

// rowCount reads how many rows of a kind the form had (its hidden count
// field), def when absent, at most max.
func rowCount(r *http.Request, name string, def, max int) int {
	n, err := strconv.Atoi(r.PostFormValue(name))
	if err != nil || n < 1 {
		return def
	}
	return min(n, max)
}

func readFlagForm(r *http.Request) *flagForm {
	f := &flagForm{Types: variationTypes, Operators: operators,
		Vars:  make([]varRow, rowCount(r, "vars", formVariations, core.MaxVariations)),
		Conds: make([]condRow, rowCount(r, "conds", formConditions, core.MaxConditions))}
	v := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	f.Key, f.Description, f.Type = v("key"), r.PostFormValue("description"), v("type")
	f.Traffic, f.Start, f.End = v("traffic"), v("start"), v("end")
	for i := range f.Vars {
		n := strconv.Itoa(i)
		f.Vars[i] = varRow{Key: v("var_key_" + n), Value: r.PostFormValue("var_value_" + n), Weight: v("var_weight_" + n)}
	}
	for i := range f.Conds {
		n := strconv.Itoa(i)
		f.Conds[i] = condRow{Rule: v("cond_rule_" + n), Attr: v("cond_attr_" + n), Op: v("cond_op_" + n), Value: r.PostFormValue("cond_value_" + n)}
	}
	return f
}

// addToExisting adds the experiment of the new-experiment form to the flag
// of the same key that already exists, in env, when the form's variations
// are among the flag's and of its type. Otherwise it returns why not.
func (u *UI) addToExisting(r *http.Request, env string, flag core.Flag, alloc core.Allocation, conflict error) (bool, error) {
	ctx := r.Context()
	have, err := u.core.Flag(ctx, flag.Key)
	if err != nil {
		return false, conflict
	}
	var keys []string
	for _, v := range have.Variations {
		keys = append(keys, v.Key)
	}
	fits := have.VariationType == flag.VariationType
	for _, v := range flag.Variations {
		fits = fits && slices.Contains(keys, v.Key)
	}
	if !fits {
		return false, core.Errorf(core.ECONFLICT, "flag %q already exists, as a %s flag with variations %s; open it and add the experiment there, or choose another key",
			flag.Key, have.VariationType, strings.Join(keys, ", "))
	}
	s, err := u.core.FlagSettings(ctx, env, flag.Key)
	if err != nil {
		return false, err
	}
	if _, i := findAllocation(s, alloc.Key); i >= 0 {
		return false, conflict // already here: the key is taken
	}
	if _, err := u.core.AddAllocation(ctx, env, flag.Key, s.Version, alloc, -1); err != nil {
		return false, err
	}
	return true, nil
}

// parsePercent reads a percentage typed in a form.
func parsePercent(field, s string) (core.Percent, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	var p core.Percent
	if s == "" {
		return 0, core.Invalid(field, "is required")
	}
	if err := p.UnmarshalJSON([]byte(s)); err != nil || p < 0 {
		return 0, core.Invalid(field, "must be a percentage from 0 to 100 with at most two decimals")
	}
	return p, nil
}

// parseWhen reads a datetime-local value, in UTC.
func parseWhen(field, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return &t, nil
		}
	}
	return nil, core.Invalid(field, "must be a date and time such as 2026-03-01T09:00")
}

// conditionValue turns what was typed for an operator into its JSON value.
func conditionValue(op, s string) json.RawMessage {
	s = strings.TrimSpace(s)
	var v any = s
	switch op {
	case ufc.OpOneOf, ufc.OpNotOneOf:
		list := []string{}
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				list = append(list, part)
			}
		}
		v = list
	case ufc.OpIsNull:
		v = !strings.EqualFold(s, "false")
	case ufc.OpGT, ufc.OpGTE, ufc.OpLT, ufc.OpLTE:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			v = f
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// build turns the form into a flag and its experiment allocation.
func (f *flagForm) build() (core.Flag, core.Allocation, error) {
	flag := core.Flag{Key: f.Key, Description: f.Description, VariationType: ufc.VariationType(f.Type)}
	alloc := core.Allocation{Key: f.Key, Type: core.Experiment, Status: core.Draft}
	f.varRow, f.condRow = nil, nil
	for i, row := range f.Vars {
		if row.Key == "" && strings.TrimSpace(row.Value) == "" {
			continue
		}
		val := strings.TrimSpace(row.Value)
		var raw json.RawMessage
		if flag.VariationType == ufc.TypeString {
			if val == "" {
				val = row.Key
			}
			raw, _ = json.Marshal(val)
		} else {
			raw = json.RawMessage(val)
		}
		n := len(flag.Variations)
		flag.Variations = append(flag.Variations, core.Variation{Key: row.Key, Value: raw})
		f.varRow = append(f.varRow, i)
		w := core.Percent(0)
		if row.Weight != "" {
			var err error
			if w, err = parsePercent(fmt.Sprintf("allocations[0].weights[%d].weight", n), row.Weight); err != nil {
				return flag, alloc, err
			}
		}
		alloc.Weights = append(alloc.Weights, core.Weight{Variation: row.Key, Weight: w})
	}
	var err error
	if alloc.Traffic, err = parsePercent("allocations[0].traffic", f.Traffic); err != nil {
		return flag, alloc, err
	}
	groups := map[string]int{}
	for i, c := range f.Conds {
		if c.Attr == "" && strings.TrimSpace(c.Value) == "" {
			continue
		}
		g, ok := groups[c.Rule]
		if !ok {
			g = len(alloc.Rules)
			groups[c.Rule] = g
			alloc.Rules = append(alloc.Rules, core.Rule{})
			f.condRow = append(f.condRow, nil)
		}
		alloc.Rules[g].Conditions = append(alloc.Rules[g].Conditions, core.Condition{Attribute: c.Attr, Operator: c.Op, Value: conditionValue(c.Op, c.Value)})
		f.condRow[g] = append(f.condRow[g], i)
	}
	if alloc.StartAt, err = parseWhen("allocations[0].startAt", f.Start); err != nil {
		return flag, alloc, err
	}
	if alloc.EndAt, err = parseWhen("allocations[0].endAt", f.End); err != nil {
		return flag, alloc, err
	}
	return flag, alloc, nil
}

var (
	reVariation = regexp.MustCompile(`^variations\[(\d+)\]\.(\w+)$`)
	reWeight    = regexp.MustCompile(`^allocations\[0\]\.weights\[(\d+)\](?:\.(\w+))?$`)
	reCondition = regexp.MustCompile(`^allocations\[0\]\.rules\[(\d+)\]\.conditions\[(\d+)\]\.(\w+)`)
)

// fields maps a store field name to the form field and its label.
func (f *flagForm) fields(name string) (string, string) {
	switch name {
	case "key", "allocations[0].key":
		return "key", "Key"
	case "description":
		return "description", "Description"
	case "variationType":
		return "type", "Variation type"
	case "variations", "allocations[0].weights":
		return "variations", "Variations"
	case "allocations[0].traffic":
		return "traffic", "Traffic allocation"
	case "allocations[0].startAt":
		return "start", "Start"
	case "allocations[0].endAt":
		return "end", "End"
	}
	if m := reVariation.FindStringSubmatch(name); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(f.varRow) {
			return fmt.Sprintf("var-%d", f.varRow[i]), fmt.Sprintf("Variation %d %s", f.varRow[i]+1, m[2])
		}
	}
	if m := reWeight.FindStringSubmatch(name); m != nil {
		if i, _ := strconv.Atoi(m[1]); i < len(f.varRow) {
			return fmt.Sprintf("var-%d", f.varRow[i]), fmt.Sprintf("Variation %d weight", f.varRow[i]+1)
		}
	}
	if m := reCondition.FindStringSubmatch(name); m != nil {
		g, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		if g < len(f.condRow) && c < len(f.condRow[g]) {
			row := f.condRow[g][c]
			return fmt.Sprintf("cond-%d", row), fmt.Sprintf("Condition %d %s", row+1, m[3])
		}
	}
	if strings.HasPrefix(name, "allocations[0]") {
		return "variations", "Experiment"
	}
	return "", ""
}

func (u *UI) newFlagForm(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title, p.Nav, p.Data = "New experiment", "new", newFlagForm()
	u.render(w, r, "new", p)
	return nil
}

func (u *UI) createFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	form := readFlagForm(r)
	p.Path = "/flags/new"
	p.Title, p.Nav, p.Data = "New experiment", "new", form
	// "Add a variation" and "Add a condition" render the form again with
	// one more row, keeping what was typed: no script needed.
	switch r.PostFormValue("action") {
	case "add-var":
		form.Vars = append(form.Vars, varRow{})
		u.render(w, r, "new", p)
		return nil
	case "add-cond":
		form.Conds = append(form.Conds, condRow{Rule: "1"})
		u.render(w, r, "new", p)
		return nil
	}
	flag, alloc, err := form.build()
	if err == nil {
		// The flag and its experiment, in one transaction. Creating an
		// experiment does not turn the flag on; starting it does
		// (docs/rules.md).
		settings := core.FlagSettings{Environment: p.Env, Allocations: []core.Allocation{alloc}}
		_, _, err = u.core.CreateFlagWith(r.Context(), flag, settings)
		if core.ErrorCode(err) == core.ECONFLICT {
			// The flag exists (created in another environment, say): the
			// experiment goes into it here, if it fits its variations.
			var added bool
			if added, err = u.addToExisting(r, p.Env, flag, alloc, err); added {
				u.done(w, r, "/flags/"+flag.Key+envQuery(p.Env),
					fmt.Sprintf("Flag %s already existed: added experiment %s to it in %s as a draft (the flag's variations are unchanged). It assigns no one until you start it.", flag.Key, alloc.Key, p.Env))
				return nil
			}
		}
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, form.fields)
		if core.ErrorCode(err) == core.ECONFLICT {
			msg := core.ErrorMessage(err)
			if !strings.Contains(msg, "choose another key") {
				msg += "; choose another key"
			}
			p.Errors = map[string]string{"key": "Key: " + msg}
		}
		u.render(w, r, "new", p)
		return nil
	}
	u.done(w, r, "/flags/"+flag.Key+envQuery(p.Env),
		fmt.Sprintf("Created experiment %s in %s as a draft: it assigns no one until you start it.", flag.Key, p.Env))
	return nil
}
