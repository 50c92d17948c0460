package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/srm"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

type weightView struct {
	Variation, Weight string
}

type allocView struct {
	Key, Type, Status, Sentence, Traffic, TrafficNum string
	Experiment                                       bool
	TrafficBP                                        int
	Weights                                          []weightView
	Summary                                          *assignmentSummary // experiments only
}

// assignmentSummary is an experiment's assignment table at a glance: the
// subjects per variation against the weights, the sample ratio check, and
// the last days' assignments.
type assignmentSummary struct {
	store.AssignmentSummary
	Rows     []summaryRow
	SRM      *srm.Result
	SRMNote  string
	Mismatch bool
	Days     []store.DailyCount      // the last 14 days with assignments
	Holdout  *httpapi.HoldoutSummary // the experiment's holdout, by half (templates/partials)
	Env      string                  // for the partial's links
}

type summaryRow struct {
	Variation            string
	Subjects             int64
	Observed, Configured string
}

type envState struct {
	Env, Status, Traffic string
	Updated              string
}

type traceRow struct {
	Position        int
	Key, Code, Text string
}

type preview struct {
	Subject, Attrs                                    string
	Ran                                               bool
	Code, Variation, Value, Allocation, Reason, Error string
	Trace                                             []traceRow
}

type detailData struct {
	Flag       core.Flag
	Settings   core.FlagSettings
	Status     string
	Allocs     []allocView
	States     []envState
	ConfigJSON string
	Preview    preview
}

func (u *UI) flagDetail(w http.ResponseWriter, r *http.Request, p *page) error {
	d, err := u.loadDetail(r, p, r.PathValue("flag"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Has("subject") {
		d.Preview = u.preview(p.Env, d.Flag, q.Get("subject"), q.Get("attrs"))
	}
	u.render(w, r, "flag", p)
	return nil
}

// loadDetail reads what the flag page shows and sets p.Data.
func (u *UI) loadDetail(r *http.Request, p *page, key string) (*detailData, error) {
	ctx := r.Context()
	f, err := u.core.Flag(ctx, key)
	if err != nil {
		return nil, err
	}
	d := &detailData{Flag: f}
	for _, e := range p.Envs {
		s, err := u.core.FlagSettings(ctx, e.Name, key)
		if err != nil {
			return nil, err
		}
		st := envState{Env: e.Name, Status: flagStatus(s), Traffic: trafficOf(s), Updated: "never changed"}
		if s.Version > 0 {
			st.Updated = when(s.UpdatedAt)
		}
		d.States = append(d.States, st)
		if e.Name == p.Env {
			d.Settings = s
		}
	}
	d.Status = flagStatus(d.Settings)
	if !f.Published() {
		d.Status = archived
	}
	for _, a := range d.Settings.Allocations {
		v := allocView{Key: a.Key, Type: a.Type, Status: strings.ToUpper(a.Status), Sentence: describeAllocation(&a),
			Experiment: a.Type == core.Experiment, Traffic: pct(a.Traffic), TrafficNum: pctNumber(a.Traffic), TrafficBP: int(a.Traffic)}
		for _, w := range a.Weights {
			v.Weights = append(v.Weights, weightView{Variation: w.Variation, Weight: pctNumber(w.Weight)})
		}
		// Variations without a weight can be given one.
		for _, fv := range f.Variations {
			if v.Experiment && !slices.ContainsFunc(a.Weights, func(w core.Weight) bool { return w.Variation == fv.Key }) {
				v.Weights = append(v.Weights, weightView{Variation: fv.Key, Weight: "0"})
			}
		}
		if v.Experiment {
			if v.Summary, err = u.summarize(ctx, p.Env, key, &a); err != nil {
				return nil, err
			}
		}
		d.Allocs = append(d.Allocs, v)
	}
	if pub := u.cache.Environment(p.Env); pub != nil {
		var doc struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		if json.Unmarshal(pub.Body, &doc) == nil {
			if raw, ok := doc.Flags[key]; ok {
				var buf bytes.Buffer
				json.Indent(&buf, raw, "", "  ")
				d.ConfigJSON = buf.String()
			}
		}
	}
	p.Title, p.Nav, p.Data = f.Key, "flags", d
	return d, nil
}

// summarize reads an experiment's assignment summary from the table and
// runs the sample ratio mismatch check against its weights.
func (u *UI) summarize(ctx context.Context, env, flag string, a *core.Allocation) (*assignmentSummary, error) {
	sum, err := u.db.SummarizeAssignments(ctx, store.AssignmentFilter{Environment: env, FeatureFlag: flag, Allocation: a.Key})
	if err != nil {
		return nil, err
	}
	s := &assignmentSummary{AssignmentSummary: sum, Env: env}
	if s.Holdout, err = httpapi.SummarizeHoldout(ctx, u.db, store.AssignmentFilter{Environment: env, FeatureFlag: flag}, a); err != nil {
		return nil, err
	}
	if n := len(sum.Daily); n > 0 {
		first := sum.Daily[n-1].Day
		if t, err := time.Parse(time.DateOnly, first); err == nil {
			first = t.AddDate(0, 0, -13).Format(time.DateOnly)
		}
		for _, c := range sum.Daily {
			if c.Day >= first {
				s.Days = append(s.Days, c)
			}
		}
	}
	if sum.Assignments == 0 {
		return s, nil
	}
	var single int64
	for _, n := range sum.Variations {
		single += n
	}
	ws := make([]srm.Weight, 0, len(a.Weights))
	for _, w := range a.Weights {
		ws = append(ws, srm.Weight{Variation: w.Variation, Weight: float64(w.Weight)})
		n := sum.Variations[w.Variation]
		s.Rows = append(s.Rows, summaryRow{Variation: w.Variation, Subjects: n, Observed: share(n, single), Configured: pct(w.Weight)})
	}
	for v, n := range sum.Variations {
		if !slices.ContainsFunc(a.Weights, func(w core.Weight) bool { return w.Variation == v }) {
			s.Rows = append(s.Rows, summaryRow{Variation: v, Subjects: n, Observed: share(n, single), Configured: "0 %"})
		}
	}
	res, err := srm.TestVariations(ws, sum.Variations)
	if err != nil {
		s.SRMNote = err.Error()
	} else {
		s.SRM, s.Mismatch = &res, res.Mismatch
	}
	return s, nil
}

func share(n, total int64) string {
	if total == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + " %"
}

// ---- preview

// parseAttributes reads attributes typed one per line as name = value (or a
// JSON object). Numbers and true/false are typed; quotes force a string.
func parseAttributes(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	attrs := map[string]any{}
	if s == "" {
		return attrs, nil
	}
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &attrs); err != nil {
			return nil, fmt.Errorf("the attributes are not a valid JSON object: %v", err)
		}
		return attrs, nil
	}
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			name, val, ok = strings.Cut(line, ":")
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: write each attribute as name = value", n+1)
		}
		switch {
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
			attrs[name] = val[1 : len(val)-1]
		case val == "true" || val == "false":
			attrs[name] = val == "true"
		default:
			if f, err := strconv.ParseFloat(val, 64); err == nil {
				attrs[name] = f
			} else {
				attrs[name] = val
			}
		}
	}
	return attrs, nil
}

var allocationCodeText = map[string]string{
	"MATCH":                 "matched: this allocation decided",
	"BEFORE_START_TIME":     "skipped: not started yet",
	"AFTER_END_TIME":        "skipped: already ended",
	"FAILING_RULE":          "skipped: the subject matches none of its rules",
	"TRAFFIC_EXPOSURE_MISS": "skipped: the subject is outside its traffic allocation",
	"UNEVALUATED":           "not reached: an earlier allocation decided",
}

// preview asks the engine, on the configuration this server publishes,
// what a subject gets.
func (u *UI) preview(env string, f core.Flag, subject, attrText string) preview {
	pv := preview{Subject: subject, Attrs: attrText}
	if strings.TrimSpace(subject) == "" {
		pv.Error = "Subject key: is required"
		return pv
	}
	attrs, err := parseAttributes(attrText)
	if err != nil {
		pv.Error = "Attributes: " + err.Error()
		return pv
	}
	if err := core.CheckPreview(subject, attrs); err != nil {
		pv.Error = core.ErrorMessage(err)
		return pv
	}
	pub := u.cache.Environment(env)
	if pub == nil {
		pv.Error = "The configuration of " + env + " is not published yet; try again in a second."
		return pv
	}
	res, trace := pub.Snapshot.Explain(f.Key, subject, attrs, "", u.now())
	pv.Ran = true
	pv.Code, pv.Allocation, pv.Variation = res.Code.String(), res.AllocationKey(), res.VariationKey()
	pv.Reason = res.Description(f.Key)
	if res.Code == eval.Match && res.Variation != nil {
		pv.Value = res.Variation.Text(f.VariationType)
	} else {
		pv.Reason += " The SDK returns the default value the caller passes."
	}
	for _, t := range trace {
		pv.Trace = append(pv.Trace, traceRow{Position: t.Position, Key: t.Key, Code: t.Code.String(), Text: allocationCodeText[t.Code.String()]})
	}
	return pv
}

// ---- changes to a flag's settings in an environment

// update makes one change to the flag's settings in p.Env through the
// core, provided they are still at the version the form was rendered with.
// On success it redirects with msg and the core's warnings; on a
// validation error or a conflict it renders the flag page with the error
// next to the control.
func (u *UI) update(w http.ResponseWriter, r *http.Request, p *page, change func(ctx context.Context, env, flag string, version int64) (core.Change, error), msg func(core.Change) string) error {
	return u.updateFields(w, r, p, change, msg, settingsFields)
}

// updateFields is update with fields mapping the core's field names to the
// page's controls.
func (u *UI) updateFields(w http.ResponseWriter, r *http.Request, p *page, change func(ctx context.Context, env, flag string, version int64) (core.Change, error), msg func(core.Change) string, fields func(core.FlagSettings) func(string) (string, string)) error {
	key := r.PathValue("flag")
	p.Path = "/flags/" + key
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	ch, err := change(r.Context(), p.Env, key, version)
	if err != nil {
		if core.ErrorCode(err) == core.ECONFLICT {
			err = core.Errorf(core.ECONFLICT, "someone changed this flag in %s since you opened the page; look at it again and redo your change", p.Env)
		}
		return u.flagFailed(w, r, p, key, err, fields)
	}
	text := msg(ch)
	for _, warning := range ch.Warnings {
		text += " Note: " + warning + "."
	}
	u.done(w, r, "/flags/"+key+envQuery(p.Env), text)
	return nil
}

// flagFailed shows the flag's page again with err next to the control it
// concerns (fields maps the core's field names to the page's controls; nil:
// at the top). Errors that are no fault of the form, and a flag that is
// gone, go to the error page.
func (u *UI) flagFailed(w http.ResponseWriter, r *http.Request, p *page, key string, err error, fields func(core.FlagSettings) func(string) (string, string)) error {
	if statusOf(err) == http.StatusInternalServerError || core.ErrorCode(err) == core.ENOTFOUND {
		return err
	}
	p.Path = "/flags/" + key
	if _, lerr := u.loadDetail(r, p, key); lerr != nil {
		return lerr
	}
	var at func(string) (string, string)
	if fields != nil {
		at = fields(p.Data.(*detailData).Settings)
	}
	p.fail(err, at)
	u.render(w, r, "flag", p)
	return nil
}

var reAllocField = regexp.MustCompile(`^allocations\[(\d+)\]\.(traffic|weights|status)`)

func settingsFields(s core.FlagSettings) func(string) (string, string) {
	return func(name string) (string, string) {
		m := reAllocField.FindStringSubmatch(name)
		if m == nil {
			return "", ""
		}
		i, _ := strconv.Atoi(m[1])
		if i >= len(s.Allocations) {
			return "", ""
		}
		label := map[string]string{"traffic": "Traffic allocation", "weights": "Weights", "status": "Status"}[m[2]]
		return m[2] + "-" + s.Allocations[i].Key, label
	}
}

func findAllocation(s core.FlagSettings, key string) (core.Allocation, int) {
	i := slices.IndexFunc(s.Allocations, func(a core.Allocation) bool { return a.Key == key })
	if i < 0 {
		return core.Allocation{}, -1
	}
	return s.Allocations[i], i
}

func (u *UI) setEnabled(w http.ResponseWriter, r *http.Request, p *page) error {
	on := r.PostFormValue("enabled") == "true"
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		return u.core.SetEnabled(ctx, env, flag, version, on)
	}, func(ch core.Change) string {
		if on {
			return fmt.Sprintf("Turned %s on in %s.", ch.After.Flag, ch.After.Environment)
		}
		return fmt.Sprintf("Turned %s off in %s: every subject gets the default value.", ch.After.Flag, ch.After.Environment)
	})
}

func (u *UI) setStatus(w http.ResponseWriter, r *http.Request, p *page) error {
	status, alloc := r.PostFormValue("status"), r.PathValue("alloc")
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		return u.core.SetStatus(ctx, env, flag, alloc, version, status)
	}, func(ch core.Change) string {
		a, _ := findAllocation(ch.After, alloc)
		if status == core.Running {
			return fmt.Sprintf("Started %s in %s: %s of subjects are assigned.", a.Key, ch.After.Environment, pct(a.Traffic))
		}
		return fmt.Sprintf("Stopped %s in %s: no one is assigned; starting it again restores the same assignments.", a.Key, ch.After.Environment)
	})
}

// trafficChange says what a traffic change does to subjects.
func trafficChange(from, to core.Percent) string {
	switch {
	case to > from:
		return fmt.Sprintf("Everyone assigned so far keeps their variation; about %s more subjects enter.", pct(to-from))
	case to < from:
		return fmt.Sprintf("About %s of subjects leave the experiment; raising it back brings exactly them back.", pct(from-to))
	}
	return "Nothing changes."
}

func (u *UI) setTraffic(w http.ResponseWriter, r *http.Request, p *page) error {
	alloc := r.PathValue("alloc")
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		s, err := u.core.FlagSettings(ctx, env, flag)
		if err != nil {
			return core.Change{}, err
		}
		_, i := findAllocation(s, alloc)
		to, err := parsePercent(fmt.Sprintf("allocations[%d].traffic", max(i, 0)), r.PostFormValue("traffic"))
		if err != nil {
			return core.Change{}, err
		}
		return u.core.PatchAllocation(ctx, env, flag, alloc, version, core.AllocationPatch{Traffic: &to})
	}, func(ch core.Change) string {
		from, _ := findAllocation(ch.Before, alloc)
		to, _ := findAllocation(ch.After, alloc)
		return fmt.Sprintf("Traffic of %s in %s: %s → %s. %s", alloc, ch.After.Environment, pct(from.Traffic), pct(to.Traffic), trafficChange(from.Traffic, to.Traffic))
	})
}

func (u *UI) setWeights(w http.ResponseWriter, r *http.Request, p *page) error {
	alloc := r.PathValue("alloc")
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		s, err := u.core.FlagSettings(ctx, env, flag)
		if err != nil {
			return core.Change{}, err
		}
		_, i := findAllocation(s, alloc)
		field := fmt.Sprintf("allocations[%d].weights", max(i, 0))
		f, err := u.core.Flag(ctx, flag)
		if err != nil {
			return core.Change{}, err
		}
		var ws []core.Weight
		for _, v := range f.Variations {
			raw := strings.TrimSpace(r.PostFormValue("weight_" + v.Key))
			if raw == "" {
				continue
			}
			wt, err := parsePercent(field, raw)
			if err != nil {
				return core.Change{}, core.Invalid(field, "of %s must be a percentage from 0 to 100", v.Key)
			}
			ws = append(ws, core.Weight{Variation: v.Key, Weight: wt})
		}
		// The form asks first, as the core warns after: the change
		// re-randomizes the experiment.
		if r.PostFormValue("confirm") != "yes" {
			return core.Change{}, core.Invalid(field, "changing weights re-randomizes the experiment; tick the box to confirm")
		}
		return u.core.PatchAllocation(ctx, env, flag, alloc, version, core.AllocationPatch{Weights: &ws})
	}, func(ch core.Change) string {
		return fmt.Sprintf("Changed the weights of %s in %s.", alloc, ch.After.Environment)
	})
}

func (u *UI) addRollout(w http.ResponseWriter, r *http.Request, p *page) error {
	key := strings.TrimSpace(r.PostFormValue("key"))
	variation := r.PostFormValue("variation")
	return u.updateFields(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		s, err := u.core.FlagSettings(ctx, env, flag)
		if err != nil {
			return core.Change{}, err
		}
		field := fmt.Sprintf("allocations[%d]", len(s.Allocations))
		percent, err := parsePercent(field+".percent", r.PostFormValue("percent"))
		if err != nil {
			return core.Change{}, err
		}
		a := core.Allocation{Key: key, Type: core.Rollout, Variation: variation, Percent: percent}
		return u.core.AddAllocation(ctx, env, flag, version, a, -1)
	}, func(ch core.Change) string {
		a, _ := findAllocation(ch.After, key)
		return fmt.Sprintf("Added rollout %s in %s: %s of subjects get %s.", key, ch.After.Environment, pct(a.Percent), a.Variation)
	}, func(s core.FlagSettings) func(string) (string, string) {
		prefix := fmt.Sprintf("allocations[%d].", len(s.Allocations))
		return func(name string) (string, string) {
			switch strings.TrimPrefix(name, prefix) {
			case "key":
				return "rollout-key", "Key"
			case "variation":
				return "rollout-variation", "Variation"
			case "percent":
				return "rollout-percent", "Subjects"
			}
			return "", ""
		}
	})
}

// ---- rules as sentences

func quoteList(v json.RawMessage) string {
	var list []string
	if json.Unmarshal(v, &list) != nil {
		return string(v)
	}
	for i := range list {
		list[i] = strconv.Quote(list[i])
	}
	return strings.Join(list, ", ")
}

func plain(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func describeCondition(c core.Condition) string {
	a := c.Attribute
	switch c.Operator {
	case ufc.OpOneOf:
		return a + " is one of " + quoteList(c.Value)
	case ufc.OpNotOneOf:
		return a + " is none of " + quoteList(c.Value)
	case ufc.OpMatches:
		return a + " matches /" + plain(c.Value) + "/"
	case ufc.OpNotMatches:
		return a + " does not match /" + plain(c.Value) + "/"
	case ufc.OpGT:
		return a + " is greater than " + plain(c.Value)
	case ufc.OpGTE:
		return a + " is at least " + plain(c.Value)
	case ufc.OpLT:
		return a + " is less than " + plain(c.Value)
	case ufc.OpLTE:
		return a + " is at most " + plain(c.Value)
	case ufc.OpIsNull:
		if string(c.Value) == "false" {
			return a + " is set"
		}
		return a + " is not set"
	}
	return a + " " + c.Operator + " " + string(c.Value)
}

func describeRules(rules []core.Rule) string {
	if len(rules) == 0 {
		return "all subjects"
	}
	var parts []string
	for _, r := range rules {
		var conds []string
		for _, c := range r.Conditions {
			conds = append(conds, describeCondition(c))
		}
		if len(conds) == 0 {
			conds = []string{"any subject"}
		}
		parts = append(parts, strings.Join(conds, " and "))
	}
	return "subjects whose " + strings.Join(parts, ", or whose ")
}

func describeAllocation(a *core.Allocation) string {
	var b strings.Builder
	who := describeRules(a.Rules)
	switch a.Type {
	case core.Experiment:
		var split []string
		for _, w := range a.Weights {
			split = append(split, w.Variation+" "+pct(w.Weight))
		}
		fmt.Fprintf(&b, "Experiment (%s): of %s, %s enter, split %s.", a.Status, who, pct(a.Traffic), strings.Join(split, " / "))
		if a.Status != core.Running {
			b.WriteString(" While it is not running, no one is assigned.")
		}
	case core.Rollout:
		fmt.Fprintf(&b, "Rollout: %s of %s get %s.", pct(a.Percent), who, a.Variation)
	case core.Targeted:
		fmt.Fprintf(&b, "Targeted: %s get %s.", who, a.Variation)
	case core.Imported:
		var to []string
		for _, s := range a.Splits {
			to = append(to, s.Variation)
		}
		fmt.Fprintf(&b, "Imported: %s are split to %s exactly as the imported document had it (salts and ranges kept).", who, strings.Join(to, " / "))
	}
	if a.StartAt != nil {
		fmt.Fprintf(&b, " Starts %s.", when(*a.StartAt))
	}
	if a.EndAt != nil {
		fmt.Fprintf(&b, " Ends %s.", when(*a.EndAt))
	}
	return b.String()
}
