package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// ---- copy between environments

type copyData struct {
	Flag        core.Flag
	From, To    string
	Targets     []string
	ToVersion   int64
	Differences []diffRow
}

// diffRow is a line of the diff, with the allocation as a sentence when a
// whole one is added or removed.
type diffRow struct {
	core.Difference
	Before, After string
}

func diffRows(dst, src core.FlagSettings) []diffRow {
	sentence := func(s core.FlagSettings, path, js string) string {
		key, ok := strings.CutPrefix(path, "allocation ")
		if !ok || strings.Contains(key, ":") || js == "" {
			return js
		}
		if a, i := findAllocation(s, key); i >= 0 {
			return describeAllocation(&a)
		}
		return js
	}
	var out []diffRow
	for _, d := range core.DiffSettings(dst, src) {
		out = append(out, diffRow{Difference: d, Before: sentence(dst, d.Path, d.Before), After: sentence(src, d.Path, d.After)})
	}
	return out
}

func (u *UI) copyForm(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	f, err := u.core.Flag(ctx, r.PathValue("flag"))
	if err != nil {
		return err
	}
	d := &copyData{Flag: f, From: p.Env, To: r.URL.Query().Get("to")}
	for _, e := range p.Envs {
		if e.Name != p.Env {
			d.Targets = append(d.Targets, e.Name)
		}
	}
	if !slices.Contains(d.Targets, d.To) {
		d.To = ""
		if len(d.Targets) > 0 {
			d.To = d.Targets[0]
		}
	}
	if d.To != "" {
		src, err := u.core.FlagSettings(ctx, d.From, f.Key)
		if err != nil {
			return err
		}
		dst, err := u.core.FlagSettings(ctx, d.To, f.Key)
		if err != nil {
			return err
		}
		d.ToVersion, d.Differences = dst.Version, diffRows(dst, src)
	}
	p.Title, p.Nav, p.Data, p.Path = "Copy "+f.Key, "flags", d, "/flags/"+f.Key+"/copy"
	u.render(w, r, "copy", p)
	return nil
}

func (u *UI) copySettings(w http.ResponseWriter, r *http.Request, p *page) error {
	key, to := r.PathValue("flag"), r.PostFormValue("to")
	version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	ch, err := u.core.CopyFlagSettings(r.Context(), key, p.Env, to, version)
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		if core.ErrorCode(err) == core.ECONFLICT && strings.Contains(err.Error(), "version") {
			err = core.Errorf(core.ECONFLICT, "the settings in %s changed since the diff was shown; look at the new diff and confirm again", to)
		}
		r.URL.RawQuery = url.Values{"to": {to}}.Encode()
		if ferr := u.copyForm(w, r, withError(p, err)); ferr != nil {
			return ferr
		}
		return nil
	}
	text := fmt.Sprintf("Copied the settings of %s from %s to %s.", key, p.Env, to)
	for _, warning := range ch.Warnings {
		text += " Note: " + warning + "."
	}
	u.done(w, r, "/flags/"+key+envQuery(to), text)
	return nil
}

func withError(p *page, err error) *page {
	p.fail(err, nil)
	return p
}

// ---- environments

func (u *UI) environmentsPage(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title, p.Nav, p.Path = "Environments", "envs", "/environments"
	u.render(w, r, "envs", p)
	return nil
}

func (u *UI) createEnvironment(w http.ResponseWriter, r *http.Request, p *page) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	e, err := u.core.CreateEnvironment(r.Context(), name)
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.Title, p.Nav, p.Path, p.Data = "Environments", "envs", "/environments", name
		p.fail(err, func(string) (string, string) { return "env-name", "Name" })
		if p.Errors == nil {
			p.Errors = map[string]string{"env-name": "Name: " + core.ErrorMessage(err)}
		}
		u.render(w, r, "envs", p)
		return nil
	}
	u.done(w, r, "/flags"+envQuery(e.Name), fmt.Sprintf("Created environment %s. Every flag is off in it until you turn it on or copy settings into it; SDKs read it with a key of its own.", e.Name))
	return nil
}
