package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The layers page (issue 15): each layer of the environment as a bar of its
// 10,000 shards, who owns which part and what is free, with forms to create
// and delete layers and to join, resize and leave them; the holdouts, each
// with a page of its experiments (add, ship, remove). Every form calls one
// core operation, which holds the rules and the refusals shown here
// (docs/layers-and-holdouts.md).

func (u *UI) registerLayers(a func(string, func(http.ResponseWriter, *http.Request, *page) error)) {
	a("GET /layers", u.layersPage)
	a("POST /layers", u.createLayer)
	a("POST /layers/{layer}/delete", u.deleteLayer)
	a("POST /layers/{layer}/share", u.setLayerShare)
	a("POST /layers/{layer}/leave", u.leaveLayer)
	a("POST /holdouts", u.createHoldout)
	a("GET /holdouts/{holdout}", u.holdoutPage)
	a("POST /holdouts/{holdout}/flags", u.addHoldoutFlag)
	a("POST /holdouts/{holdout}/ship", u.shipHoldout)
	a("POST /holdouts/{holdout}/remove", u.removeHoldoutFlag)
}

type layerView struct {
	core.Layer
	Parts []layerPart // members and free space, for the bar and the table
}

type layerPart struct {
	Label  string // flag/allocation, or "free"
	Class  string // the bar's colour class
	Share  core.Percent
	Ranges []core.Range
	// Member parts: the experiment, for the resize and leave forms.
	Flag, Allocation, Status string
}

// expRef is an experiment of the environment, as the forms' selects list
// them; its form value is "flag/allocation" (neither key may hold '/').
type expRef struct {
	Flag, Allocation, Status string
	Layer, Holdout           string // what it is in already, "" if none
	Variations               []string
}

func (e expRef) Value() string { return e.Flag + "/" + e.Allocation }

type layersData struct {
	Layers      []layerView
	Holdouts    []core.Holdout
	Experiments []expRef // not in a layer: what can join one
	// The create forms' values, kept when a form is shown again.
	LayerName, HoldoutKey, HoldoutPercent string
	HoldoutGlobal                         bool
}

// experiments lists the experiments of env with what they are in.
func (u *UI) experiments(ctx context.Context, env string) ([]expRef, error) {
	cfg, err := u.core.EnvironmentConfig(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []expRef
	for _, fc := range cfg.Flags {
		var vars []string
		for _, v := range fc.Flag.Variations {
			vars = append(vars, v.Key)
		}
		for _, a := range fc.Settings.Allocations {
			if a.Type != core.Experiment {
				continue
			}
			e := expRef{Flag: fc.Flag.Key, Allocation: a.Key, Status: a.Status, Variations: vars}
			if a.Layer != nil {
				e.Layer = a.Layer.Name
			}
			if a.Holdout != nil {
				e.Holdout = a.Holdout.Key
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func (u *UI) layersPage(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.renderLayers(w, r, p, &layersData{HoldoutPercent: "10"})
}

func (u *UI) renderLayers(w http.ResponseWriter, r *http.Request, p *page, d *layersData) error {
	ctx := r.Context()
	ls, err := u.core.Layers(ctx, p.Env)
	if err != nil {
		return err
	}
	if d.Holdouts, err = u.core.Holdouts(ctx, p.Env); err != nil {
		return err
	}
	exps, err := u.experiments(ctx, p.Env)
	if err != nil {
		return err
	}
	status := map[string]string{}
	for _, e := range exps {
		status[e.Value()] = e.Status
		if e.Layer == "" {
			d.Experiments = append(d.Experiments, e)
		}
	}
	for _, l := range ls {
		v := layerView{Layer: l}
		for i, m := range l.Members {
			v.Parts = append(v.Parts, layerPart{Label: m.Flag + " / " + m.Allocation, Class: "m" + string(rune('0'+i%8)),
				Share: m.Share(), Ranges: m.Ranges, Flag: m.Flag, Allocation: m.Allocation, Status: status[m.Flag+"/"+m.Allocation]})
		}
		free := core.LayerMember{Ranges: l.Free}
		v.Parts = append(v.Parts, layerPart{Label: "free", Class: "free", Share: free.Share(), Ranges: l.Free})
		d.Layers = append(d.Layers, v)
	}
	p.Path = "/layers"
	p.Title, p.Nav, p.Data = "Layers and holdouts", "layers", d
	u.render(w, r, "layers", p)
	return nil
}

// parseExp reads a "flag/allocation" form value.
func parseExp(field, s string) (flag, alloc string, err error) {
	flag, alloc, ok := strings.Cut(s, "/")
	if !ok || flag == "" || alloc == "" {
		return "", "", core.Invalid(field, "choose an experiment")
	}
	return flag, alloc, nil
}

// layersFields maps the core's field names to the layers page's controls.
func layersFields(f string) (string, string) {
	switch f {
	case "name":
		return "layer-name", "Layer name"
	case "key":
		return "holdout-key", "Holdout key"
	case "percent":
		return "holdout-percent", "Share of subjects"
	}
	return "", ""
}

// layersFailed shows the layers page again with err next to the control it
// concerns, or at the top (the core's refusals name the conflict); errors
// that are no fault of the form go to the error page.
func (u *UI) layersFailed(w http.ResponseWriter, r *http.Request, p *page, d *layersData, err error) error {
	if s := statusOf(err); s == http.StatusInternalServerError || s == http.StatusServiceUnavailable {
		return err
	}
	p.fail(err, layersFields)
	return u.renderLayers(w, r, p, d)
}

func layersURL(env, anchor string) string { return "/layers" + envQuery(env) + anchor }

func (u *UI) createLayer(w http.ResponseWriter, r *http.Request, p *page) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if _, err := u.core.CreateLayer(r.Context(), p.Env, name); err != nil {
		return u.layersFailed(w, r, p, &layersData{LayerName: name, HoldoutPercent: "10"}, err)
	}
	u.done(w, r, layersURL(p.Env, "#layer-"+name), fmt.Sprintf("Created layer %s in %s: experiments that join it never share a subject.", name, p.Env))
	return nil
}

func (u *UI) deleteLayer(w http.ResponseWriter, r *http.Request, p *page) error {
	name := r.PathValue("layer")
	if err := u.core.DeleteLayer(r.Context(), p.Env, name); err != nil {
		return u.layersFailed(w, r, p, &layersData{HoldoutPercent: "10"}, err)
	}
	u.done(w, r, layersURL(p.Env, ""), fmt.Sprintf("Deleted layer %s from %s.", name, p.Env))
	return nil
}

// setLayerShare joins an experiment to the layer or resizes its part. The
// settings version is read here: the change is absolute (this share of this
// layer) and the core checks it against the layout in its transaction.
func (u *UI) setLayerShare(w http.ResponseWriter, r *http.Request, p *page) error {
	name := r.PathValue("layer")
	ctx := r.Context()
	d := &layersData{HoldoutPercent: "10"}
	flag, alloc, err := parseExp("experiment", r.PostFormValue("experiment"))
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	share, err := parsePercent("share", r.PostFormValue("share"))
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	s, err := u.core.FlagSettings(ctx, p.Env, flag)
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	part := core.LayerPart{Name: name, Share: share, Rerandomize: r.PostFormValue("rerandomize") == "on"}
	ch, err := u.core.PatchAllocation(ctx, p.Env, flag, alloc, s.Version, core.AllocationPatch{Layer: &part})
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	from := core.Percent(0)
	if b, i := findAllocation(ch.Before, alloc); i >= 0 && b.Layer != nil && b.Layer.Name == name {
		from = b.Layer.Share
	}
	msg := fmt.Sprintf("Experiment %s of %s: %s of layer %s (was %s).", alloc, flag, pct(share), name, pct(from))
	if from == 0 {
		msg = fmt.Sprintf("Experiment %s of %s joined layer %s with %s of it.", alloc, flag, name, pct(share))
	}
	u.done(w, r, layersURL(p.Env, "#layer-"+name), withWarnings(msg, ch.Warnings))
	return nil
}

func (u *UI) leaveLayer(w http.ResponseWriter, r *http.Request, p *page) error {
	name := r.PathValue("layer")
	ctx := r.Context()
	d := &layersData{HoldoutPercent: "10"}
	flag, alloc, err := parseExp("experiment", r.PostFormValue("experiment"))
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	s, err := u.core.FlagSettings(ctx, p.Env, flag)
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	if a, i := findAllocation(s, alloc); i < 0 || a.Layer == nil || a.Layer.Name != name {
		return u.layersFailed(w, r, p, d, core.Errorf(core.ECONFLICT, "experiment %s of flag %s is not in layer %s", alloc, flag, name))
	}
	ch, err := u.core.PatchAllocation(ctx, p.Env, flag, alloc, s.Version, core.AllocationPatch{LeaveLayer: true})
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	u.done(w, r, layersURL(p.Env, "#layer-"+name), withWarnings(fmt.Sprintf("Experiment %s of %s left layer %s; its part is free.", alloc, flag, name), ch.Warnings))
	return nil
}

func withWarnings(msg string, warnings []string) string {
	for _, w := range warnings {
		msg += " Note: " + w + "."
	}
	return msg
}

func (u *UI) createHoldout(w http.ResponseWriter, r *http.Request, p *page) error {
	key := strings.TrimSpace(r.PostFormValue("key"))
	raw := r.PostFormValue("percent")
	global := r.PostFormValue("global") == "on"
	d := &layersData{HoldoutKey: key, HoldoutPercent: raw, HoldoutGlobal: global}
	percent, err := parsePercent("percent", raw)
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	h, err := u.core.CreateHoldout(r.Context(), p.Env, key, percent, global)
	if err != nil {
		return u.layersFailed(w, r, p, d, err)
	}
	msg := fmt.Sprintf("Created holdout %s: %s of the subjects of %s.", h.Key, pct(h.Percent), p.Env)
	if h.Global {
		msg += " It covers every experiment created from now on."
	}
	u.done(w, r, "/holdouts/"+h.Key+envQuery(p.Env), msg)
	return nil
}

// ---- one holdout

type holdoutRow struct {
	core.HoldoutFlag
	Status     string
	Published  bool // its holdout allocation is served: removing it moves subjects
	Variations []string
}

type holdoutData struct {
	Holdout core.Holdout
	Rows    []holdoutRow
	// Addable: experiments in no holdout and not running.
	Addable []expRef
}

func (u *UI) holdoutPage(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.renderHoldout(w, r, p)
}

func (u *UI) renderHoldout(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	h, err := u.core.Holdout(ctx, p.Env, r.PathValue("holdout"))
	if err != nil {
		return err
	}
	exps, err := u.experiments(ctx, p.Env)
	if err != nil {
		return err
	}
	d := &holdoutData{Holdout: h}
	for _, f := range h.Flags {
		row := holdoutRow{HoldoutFlag: f}
		if i := slices.IndexFunc(exps, func(e expRef) bool { return e.Flag == f.Flag && e.Allocation == f.Allocation }); i >= 0 {
			row.Status, row.Variations = exps[i].Status, exps[i].Variations
		}
		row.Published = row.Status == core.Running || f.Shipped != ""
		d.Rows = append(d.Rows, row)
	}
	for _, e := range exps {
		if e.Holdout == "" && e.Status != core.Running {
			d.Addable = append(d.Addable, e)
		}
	}
	p.Path = "/holdouts/" + h.Key
	p.Title, p.Nav, p.Data = "Holdout "+h.Key, "layers", d
	u.render(w, r, "holdout", p)
	return nil
}

// holdoutChange runs one holdout operation on the experiment the form
// names and shows the holdout page again, with the outcome.
func (u *UI) holdoutChange(w http.ResponseWriter, r *http.Request, p *page, op func(ctx context.Context, key, flag, alloc string) (core.Change, string, error)) error {
	key := r.PathValue("holdout")
	flag, alloc, err := parseExp("experiment", r.PostFormValue("experiment"))
	var ch core.Change
	var msg string
	if err == nil {
		ch, msg, err = op(r.Context(), key, flag, alloc)
	}
	if err != nil {
		if s := statusOf(err); s == http.StatusInternalServerError || s == http.StatusServiceUnavailable {
			return err
		}
		if core.ErrorCode(err) == core.ENOTFOUND {
			if _, herr := u.core.Holdout(r.Context(), p.Env, key); herr != nil {
				return herr // no such holdout: the not-found page
			}
		}
		p.fail(err, nil)
		return u.renderHoldout(w, r, p)
	}
	u.done(w, r, "/holdouts/"+key+envQuery(p.Env), withWarnings(msg, ch.Warnings))
	return nil
}

func (u *UI) addHoldoutFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.holdoutChange(w, r, p, func(ctx context.Context, key, flag, alloc string) (core.Change, string, error) {
		h, ch, err := u.core.AddHoldoutFlag(ctx, p.Env, key, flag, alloc, strings.TrimSpace(r.PostFormValue("statusQuo")))
		if err != nil {
			return ch, "", err
		}
		sq := ""
		for _, f := range h.Flags {
			if f.Flag == flag && f.Allocation == alloc {
				sq = f.StatusQuo
			}
		}
		return ch, fmt.Sprintf("Holdout %s now covers experiment %s of %s: its subjects will get %s.", key, alloc, flag, sq), nil
	})
}

func (u *UI) shipHoldout(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.holdoutChange(w, r, p, func(ctx context.Context, key, flag, alloc string) (core.Change, string, error) {
		winner := strings.TrimSpace(r.PostFormValue("winner"))
		_, ch, err := u.core.ShipHoldout(ctx, p.Env, key, flag, alloc, winner)
		return ch, fmt.Sprintf("Shipped %s of %s: the all-shipped half of holdout %s gets it, the status-quo half does not.", winner, flag, key), err
	})
}

func (u *UI) removeHoldoutFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.holdoutChange(w, r, p, func(ctx context.Context, key, flag, alloc string) (core.Change, string, error) {
		_, ch, err := u.core.RemoveHoldoutFlag(ctx, p.Env, key, flag, alloc, r.PostFormValue("confirm") == "on")
		return ch, fmt.Sprintf("Holdout %s no longer covers experiment %s of %s.", key, alloc, flag), err
	})
}

// Input is the share as a form's input shows it.
func (p layerPart) Input() string { return pctNumber(p.Share) }
