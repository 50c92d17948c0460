package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/eval"
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
			return 0, core.Invalid("If-Match", "must be the version (ETag) you read, such as \"3\"")
		}
		return v, nil
	}
	if body != nil && *body >= 0 {
		return *body, nil
	}
	if q := r.URL.Query().Get("version"); q != "" {
		v, err := strconv.ParseInt(q, 10, 64)
		if err != nil || v < 0 {
			return 0, core.Invalid("version", "must be a non-negative integer")
		}
		return v, nil
	}
	return 0, core.Invalid("If-Match", "is required: send the version (ETag) you read, so that concurrent edits are not overwritten")
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, core.Invalid("id", "must be an integer")
	}
	return id, nil
}

// ---- environments

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) error {
	envs, err := s.core.Environments(r.Context())
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
	e, err := s.core.CreateEnvironment(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.core.Environment(r.Context(), r.PathValue("env"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// ---- flags

func (s *Server) listFlags(w http.ResponseWriter, r *http.Request) error {
	flags, err := s.core.Flags(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, flags)
	return nil
}

func (s *Server) createFlag(w http.ResponseWriter, r *http.Request) error {
	var f core.Flag
	if err := decode(r, &f); err != nil {
		return err
	}
	f, err := s.core.CreateFlag(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (s *Server) getFlag(w http.ResponseWriter, r *http.Request) error {
	f, err := s.core.Flag(r.Context(), r.PathValue("flag"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) updateFlag(w http.ResponseWriter, r *http.Request) error {
	f := core.Flag{Version: -1}
	if err := decode(r, &f); err != nil {
		return err
	}
	if f.Key != "" && f.Key != r.PathValue("flag") {
		return core.Invalid("key", "cannot change (the path names %q)", r.PathValue("flag"))
	}
	f.Key = r.PathValue("flag")
	v, err := expectedVersion(r, &f.Version)
	if err != nil {
		return err
	}
	f.Version = v
	f, err = s.core.UpdateFlag(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) deleteFlag(w http.ResponseWriter, r *http.Request) error {
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	if err := s.core.DeleteFlag(r.Context(), r.PathValue("flag"), v); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- flag settings per environment

// SettingsResponse is a flag's settings in an environment, with warnings
// about the consequences of the change just made.
type SettingsResponse struct {
	core.FlagSettings
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.core.FlagSettings(r.Context(), r.PathValue("env"), r.PathValue("flag"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(fs.Version))
	writeJSON(w, http.StatusOK, SettingsResponse{FlagSettings: fs})
	return nil
}

// settingsResponse answers a settings change with the core's warnings.
func settingsResponse(w http.ResponseWriter, ch core.Change) error {
	w.Header().Set("ETag", etag(ch.After.Version))
	writeJSON(w, http.StatusOK, SettingsResponse{FlagSettings: ch.After, Warnings: ch.Warnings})
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	next := core.FlagSettings{Version: -1}
	if err := decode(r, &next); err != nil {
		return err
	}
	v, err := expectedVersion(r, &next.Version)
	if err != nil {
		return err
	}
	next.Version = v
	next.Environment, next.Flag = r.PathValue("env"), r.PathValue("flag")
	ch, err := s.core.UpdateSettings(r.Context(), next)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}

func (s *Server) addAllocation(w http.ResponseWriter, r *http.Request) error {
	var a core.Allocation
	if err := decode(r, &a); err != nil {
		return err
	}
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	pos := -1
	if q := r.URL.Query().Get("position"); q != "" {
		p, err := strconv.Atoi(q)
		if err != nil || p < 0 {
			return core.Invalid("position", "must be a non-negative integer")
		}
		pos = p
	}
	ch, err := s.core.AddAllocation(r.Context(), r.PathValue("env"), r.PathValue("flag"), v, a, pos)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}

// AllocationPatch is the body of PATCH .../allocations/{alloc}: the fields
// to change.
type AllocationPatch = core.AllocationPatch

func (s *Server) patchAllocation(w http.ResponseWriter, r *http.Request) error {
	var p AllocationPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	ch, err := s.core.PatchAllocation(r.Context(), r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc"), v, p)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}

func (s *Server) deleteAllocation(w http.ResponseWriter, r *http.Request) error {
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	ch, err := s.core.RemoveAllocation(r.Context(), r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc"), v)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
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
		return core.Invalid("flag", "is required")
	}
	if err := core.CheckPreview(req.Subject, req.Attributes); err != nil {
		return err
	}
	p := s.cache.Environment(r.PathValue("env"))
	if p == nil {
		return core.Errorf(core.ENOTFOUND, "environment %q not found", r.PathValue("env"))
	}
	f := p.Snapshot.Flag(req.Flag)
	if f == nil {
		return core.Errorf(core.ENOTFOUND, "flag %q not found in %s", req.Flag, p.Environment)
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
		return core.Errorf(core.ENOTFOUND, "environment %q not found", r.PathValue("env"))
	}
	if p.Body == nil {
		return core.Errorf(core.EUNAVAILABLE, "environment %q has flags but publishing refused every one (see /readyz)", r.PathValue("env"))
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
	// Kind is "server" (the default) or "client"; Origins, for a client
	// key only, are the web origins it may be used from (none: any).
	Kind    string   `json:"kind,omitempty"`
	Origins []string `json:"origins,omitempty"`
	// Role, for an admin token only, narrows it below its account's role
	// (viewer, editor, admin; default: the account's).
	Role core.Role `json:"role,omitempty"`
}

func (s *Server) listSDKKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.core.SDKKeys(r.Context())
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
	var k core.SDKKey
	var err error
	switch req.Kind {
	case "", core.KeyServer:
		if len(req.Origins) > 0 {
			return core.Invalid("origins", "only a client key has allowed origins: a server key must never be used from a browser")
		}
		k, err = s.core.CreateSDKKey(r.Context(), req.Environment, req.Name)
	case core.KeyClient:
		k, err = s.core.CreateClientKey(r.Context(), req.Environment, req.Name, req.Origins)
	default:
		return core.Invalid("kind", "must be %q or %q", core.KeyServer, core.KeyClient)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, k)
	return nil
}

func (s *Server) revokeSDKKey(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.core.RevokeSDKKey(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAdminTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.core.AdminTokens(r.Context())
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
		return core.Invalid("environment", "admin tokens are not per environment")
	}
	t, err := s.core.CreateToken(r.Context(), req.Name, req.Role)
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
	if err := s.core.RevokeAdminToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, before := 0, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return core.Invalid("limit", "must be from 1 to %d", core.MaxAuditLimit)
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return core.Invalid("before", "must be an entry id")
		}
		before = n
	}
	page, err := s.core.Audit(r.Context(), limit, before)
	if err != nil {
		return err
	}
	// A page is bounded by rows and by bytes; Link says where the next
	// (older) one starts, so a client can tell a short page from the end.
	if page.Next > 0 {
		next := url.Values{"before": {strconv.FormatInt(page.Next, 10)}}
		if limit > 0 {
			next.Set("limit", strconv.Itoa(limit))
		}
		w.Header().Set("Link", "</api/v1/audit?"+next.Encode()+">; rel=\"next\"")
	}
	writeJSON(w, http.StatusOK, page.Entries)
	return nil
}
