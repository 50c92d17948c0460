package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/store"
)

// ---- optimistic concurrency

// etag is a version as an ETag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// expectedVersion is the version the client read: the If-Match header
// ("3", W/"3" or 3), else body (the version field of a PUT body), else the
// version query parameter. Writes without one are refused, so no one
// overwrites a change they have not seen.
func expectedVersion(r *http.Request, body *int64) (int64, error) {
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im != "" {
		im = strings.Trim(strings.TrimPrefix(im, "W/"), `"`)
		v, err := strconv.ParseInt(im, 10, 64)
		if err != nil || v < 0 {
			return 0, store.Invalid("If-Match", "must be the version (ETag) you read, such as \"3\"")
		}
		return v, nil
	}
	if body != nil && *body >= 0 {
		return *body, nil
	}
	if q := r.URL.Query().Get("version"); q != "" {
		v, err := strconv.ParseInt(q, 10, 64)
		if err != nil || v < 0 {
			return 0, store.Invalid("version", "must be a non-negative integer")
		}
		return v, nil
	}
	return 0, store.Invalid("If-Match", "is required: send the version (ETag) you read, so that concurrent edits are not overwritten")
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, store.Invalid("id", "must be an integer")
	}
	return id, nil
}

// ---- environments

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) error {
	envs, err := s.db.Environments(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, envs)
	return nil
}

// CreateEnvironmentRequest is the body of POST /api/v1/environments.
type CreateEnvironmentRequest struct {
	Name string `json:"name"`
}

func (s *Server) createEnvironment(w http.ResponseWriter, r *http.Request) error {
	var req CreateEnvironmentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	e, err := s.db.CreateEnvironment(r.Context(), req.Name)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.db.Environment(r.Context(), r.PathValue("env"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// ---- flags

func (s *Server) listFlags(w http.ResponseWriter, r *http.Request) error {
	flags, err := s.db.Flags(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, flags)
	return nil
}

func (s *Server) createFlag(w http.ResponseWriter, r *http.Request) error {
	var f store.Flag
	if err := decode(r, &f); err != nil {
		return err
	}
	f, err := s.db.CreateFlag(r.Context(), f)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (s *Server) getFlag(w http.ResponseWriter, r *http.Request) error {
	f, err := s.db.Flag(r.Context(), r.PathValue("flag"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) updateFlag(w http.ResponseWriter, r *http.Request) error {
	f := store.Flag{Version: -1}
	if err := decode(r, &f); err != nil {
		return err
	}
	if f.Key != "" && f.Key != r.PathValue("flag") {
		return store.Invalid("key", "cannot change (the path names %q)", r.PathValue("flag"))
	}
	f.Key = r.PathValue("flag")
	v, err := expectedVersion(r, &f.Version)
	if err != nil {
		return err
	}
	f.Version = v
	f, err = s.db.UpdateFlag(r.Context(), f)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) deleteFlag(w http.ResponseWriter, r *http.Request) error {
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	if err := s.db.DeleteFlag(r.Context(), r.PathValue("flag"), v); err != nil {
		return err
	}
	s.changed(r.Context())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- flag settings per environment

// SettingsResponse is a flag's settings in an environment, with warnings
// about the consequences of the change just made.
type SettingsResponse struct {
	store.FlagSettings
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.db.FlagSettings(r.Context(), r.PathValue("env"), r.PathValue("flag"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(fs.Version))
	writeJSON(w, http.StatusOK, SettingsResponse{FlagSettings: fs})
	return nil
}

func (s *Server) writeSettings(w http.ResponseWriter, r *http.Request, next store.FlagSettings) error {
	next.Environment, next.Flag = r.PathValue("env"), r.PathValue("flag")
	before, after, err := s.db.UpdateFlagSettings(r.Context(), next)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	w.Header().Set("ETag", etag(after.Version))
	writeJSON(w, http.StatusOK, SettingsResponse{FlagSettings: after, Warnings: warnings(before, after)})
	return nil
}

// warnings explains edits that move subjects.
func warnings(before, after store.FlagSettings) []string {
	old := map[string]store.Allocation{}
	for _, a := range before.Allocations {
		old[a.Key] = a
	}
	var out []string
	for _, a := range after.Allocations {
		p, ok := old[a.Key]
		if !ok || a.Type != store.Experiment || p.Type != store.Experiment {
			continue
		}
		if !slices.Equal(weightMap(p.Weights), weightMap(a.Weights)) {
			out = append(out, fmt.Sprintf("experiment %s: changing weights re-randomizes it; subjects already assigned may now get another variation", a.Key))
		}
		if a.Traffic < p.Traffic {
			out = append(out, fmt.Sprintf("experiment %s: lowering traffic unassigns some subjects; raising it again brings back exactly the same subjects", a.Key))
		}
	}
	return out
}

func weightMap(ws []store.Weight) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		if w.Weight > 0 {
			out = append(out, w.Variation+"="+strconv.Itoa(int(w.Weight)))
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	next := store.FlagSettings{Version: -1}
	if err := decode(r, &next); err != nil {
		return err
	}
	v, err := expectedVersion(r, &next.Version)
	if err != nil {
		return err
	}
	next.Version = v
	return s.writeSettings(w, r, next)
}

// current reads the settings an allocation edit applies to, checking the
// client's version.
func (s *Server) current(r *http.Request) (store.FlagSettings, error) {
	v, err := expectedVersion(r, nil)
	if err != nil {
		return store.FlagSettings{}, err
	}
	fs, err := s.db.FlagSettings(r.Context(), r.PathValue("env"), r.PathValue("flag"))
	if err != nil {
		return fs, err
	}
	if fs.Version != v {
		return fs, store.Errorf(store.ECONFLICT, "settings are at version %d, not %d: reload and retry", fs.Version, v)
	}
	return fs, nil
}

func (s *Server) addAllocation(w http.ResponseWriter, r *http.Request) error {
	var a store.Allocation
	if err := decode(r, &a); err != nil {
		return err
	}
	fs, err := s.current(r)
	if err != nil {
		return err
	}
	pos := len(fs.Allocations)
	if q := r.URL.Query().Get("position"); q != "" {
		p, err := strconv.Atoi(q)
		if err != nil || p < 0 || p > len(fs.Allocations) {
			return store.Invalid("position", "must be from 0 to %d", len(fs.Allocations))
		}
		pos = p
	}
	fs.Allocations = slices.Insert(fs.Allocations, pos, a)
	return s.writeSettings(w, r, fs)
}

// AllocationPatch is the body of PATCH .../allocations/{alloc}: the fields
// to change. Enabled, if set, turns the whole flag on or off.
type AllocationPatch struct {
	Status    *string         `json:"status,omitempty"`
	Traffic   *store.Percent  `json:"traffic,omitempty"`
	Weights   *[]store.Weight `json:"weights,omitempty"`
	Percent   *store.Percent  `json:"percent,omitempty"`
	Variation *string         `json:"variation,omitempty"`
	Rules     *[]store.Rule   `json:"rules,omitempty"`
	StartAt   *time.Time      `json:"startAt,omitempty"`
	EndAt     *time.Time      `json:"endAt,omitempty"`
	DoLog     *bool           `json:"doLog,omitempty"`
}

func (s *Server) patchAllocation(w http.ResponseWriter, r *http.Request) error {
	var p AllocationPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	fs, err := s.current(r)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(fs.Allocations, func(a store.Allocation) bool { return a.Key == r.PathValue("alloc") })
	if i < 0 {
		return store.Errorf(store.ENOTFOUND, "allocation %q not found", r.PathValue("alloc"))
	}
	a := &fs.Allocations[i]
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
	return s.writeSettings(w, r, fs)
}

func (s *Server) deleteAllocation(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.current(r)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(fs.Allocations, func(a store.Allocation) bool { return a.Key == r.PathValue("alloc") })
	if i < 0 {
		return store.Errorf(store.ENOTFOUND, "allocation %q not found", r.PathValue("alloc"))
	}
	fs.Allocations = slices.Delete(fs.Allocations, i, i+1)
	return s.writeSettings(w, r, fs)
}

// ---- preview

// EvaluateRequest is the body of POST /api/v1/environments/{env}/evaluate.
type EvaluateRequest struct {
	Flag       string         `json:"flag"`
	Subject    string         `json:"subject"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// EvaluateResponse is what the engine says about one subject, on the
// configuration this server currently publishes.
type EvaluateResponse struct {
	Flag        string              `json:"flag"`
	Subject     string              `json:"subject"`
	Code        string              `json:"code"`
	Allocation  string              `json:"allocation,omitempty"`
	Variation   string              `json:"variation,omitempty"`
	Value       any                 `json:"value,omitempty"`
	DoLog       bool                `json:"doLog"`
	Description string              `json:"description"`
	Allocations []AllocationOutcome `json:"allocations"`
	Revision    int64               `json:"revision"`
}

// AllocationOutcome is what happened to one allocation in an evaluation.
type AllocationOutcome struct {
	Key      string `json:"key"`
	Code     string `json:"code"`
	Position int    `json:"position"`
}

func (s *Server) evaluate(w http.ResponseWriter, r *http.Request) error {
	var req EvaluateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Flag == "" {
		return store.Invalid("flag", "is required")
	}
	if req.Subject == "" {
		return store.Invalid("subject", "is required")
	}
	p := s.cache.Environment(r.PathValue("env"))
	if p == nil {
		return store.Errorf(store.ENOTFOUND, "environment %q not found", r.PathValue("env"))
	}
	f := p.Snapshot.Flag(req.Flag)
	if f == nil {
		return store.Errorf(store.ENOTFOUND, "flag %q not found in %s", req.Flag, p.Environment)
	}
	// The engine, and only the engine, decides.
	res, trace := p.Snapshot.Explain(req.Flag, req.Subject, req.Attributes, f.Type, s.now())
	out := EvaluateResponse{
		Flag: req.Flag, Subject: req.Subject, Code: res.Code.String(),
		Allocation: res.AllocationKey(), Variation: res.VariationKey(), DoLog: res.DoLog(),
		Description: res.Description(req.Flag), Revision: p.Revision, Allocations: []AllocationOutcome{},
	}
	if res.Code == eval.Match && res.Variation != nil {
		out.Value = res.Variation.Value(f.Type)
	}
	for _, t := range trace {
		out.Allocations = append(out.Allocations, AllocationOutcome{Key: t.Key, Code: t.Code.String(), Position: t.Position})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) environmentConfig(w http.ResponseWriter, r *http.Request) error {
	p := s.cache.Environment(r.PathValue("env"))
	if p == nil {
		return store.Errorf(store.ENOTFOUND, "environment %q not found", r.PathValue("env"))
	}
	if p.Body == nil {
		return store.Errorf(store.EUNAVAILABLE, "environment %q has flags but publishing refused every one (see /readyz)", r.PathValue("env"))
	}
	w.Header()["Content-Type"] = hdrJSON
	w.Header().Set("ETag", p.ETag)
	w.Write(p.Body)
	return nil
}

// ---- keys and tokens

// CreateKeyRequest is the body of POST /api/v1/sdk-keys and
// POST /api/v1/admin-tokens (which takes no environment).
type CreateKeyRequest struct {
	Name        string `json:"name"`
	Environment string `json:"environment,omitempty"`
}

func (s *Server) listSDKKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.db.SDKKeys(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keys)
	return nil
}

func (s *Server) createSDKKey(w http.ResponseWriter, r *http.Request) error {
	var req CreateKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Environment == "" {
		return store.Invalid("environment", "is required")
	}
	k, err := s.db.CreateSDKKey(r.Context(), req.Environment, req.Name)
	if err != nil {
		return err
	}
	s.changed(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, k)
	return nil
}

func (s *Server) revokeSDKKey(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.db.RevokeSDKKey(r.Context(), id); err != nil {
		return err
	}
	s.changed(r.Context())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAdminTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.db.AdminTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toks)
	return nil
}

func (s *Server) createAdminToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Environment != "" {
		return store.Invalid("environment", "admin tokens are not per environment")
	}
	t, err := s.db.CreateAdminToken(r.Context(), req.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) revokeAdminToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.db.RevokeAdminToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, before := 100, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return store.Invalid("limit", "must be from 1 to 1000")
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return store.Invalid("before", "must be an entry id")
		}
		before = n
	}
	entries, err := s.db.Audit(r.Context(), limit, before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entries)
	return nil
}

var _ = json.Marshal
