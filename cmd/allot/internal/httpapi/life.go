package httpapi

import (
	"context"
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The life of a flag (issue 17): archive and restore, reorder and replace
// allocations, copy settings between environments after looking at the
// diff. Thin handlers over the core (docs/api.md).

func (s *Server) registerLife(a func(string, func(http.ResponseWriter, *http.Request) error)) {
	a("POST /api/v1/flags/{flag}/archive", s.archiveFlag)
	a("POST /api/v1/flags/{flag}/restore", s.restoreFlag)
	a("GET /api/v1/flags/{flag}/diff", s.diffSettings)
	a("POST /api/v1/flags/{flag}/copy", s.copySettings)
	a("PUT /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}", s.replaceAllocation)
	a("POST /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/move", s.moveAllocation)
}

func (s *Server) archiveFlag(w http.ResponseWriter, r *http.Request) error {
	return s.setArchived(w, r, s.core.ArchiveFlag)
}

func (s *Server) restoreFlag(w http.ResponseWriter, r *http.Request) error {
	return s.setArchived(w, r, s.core.RestoreFlag)
}

func (s *Server) setArchived(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, key string, version int64) (core.Flag, error)) error {
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	f, err := op(r.Context(), r.PathValue("flag"), v)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(f.Version))
	writeJSON(w, http.StatusOK, f)
	return nil
}

// DiffResponse answers GET /api/v1/flags/{flag}/diff?from=&to=: what
// copying the settings of from to to would change, and the version of the
// settings in to that the copy must then name (If-Match).
type DiffResponse struct {
	From        string            `json:"from"`
	To          string            `json:"to"`
	ToVersion   int64             `json:"toVersion"`
	Differences []core.Difference `json:"differences"`
}

func (s *Server) diffSettings(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, to, flag := q.Get("from"), q.Get("to"), r.PathValue("flag")
	if from == "" || to == "" {
		return core.Invalid("from", "from and to name the environments to compare")
	}
	src, err := s.core.FlagSettings(r.Context(), from, flag)
	if err != nil {
		return err
	}
	dst, err := s.core.FlagSettings(r.Context(), to, flag)
	if err != nil {
		return err
	}
	d := core.DiffSettings(dst, src)
	if d == nil {
		d = []core.Difference{}
	}
	w.Header().Set("ETag", etag(dst.Version))
	writeJSON(w, http.StatusOK, DiffResponse{From: from, To: to, ToVersion: dst.Version, Differences: d})
	return nil
}

// CopyRequest is the body of POST /api/v1/flags/{flag}/copy; If-Match (or
// version) is the version of the settings in To that the diff showed.
type CopyRequest struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Version int64  `json:"version"`
}

func (s *Server) copySettings(w http.ResponseWriter, r *http.Request) error {
	req := CopyRequest{Version: -1}
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := expectedVersion(r, &req.Version)
	if err != nil {
		return err
	}
	ch, err := s.core.CopyFlagSettings(r.Context(), r.PathValue("flag"), req.From, req.To, v)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}

func (s *Server) replaceAllocation(w http.ResponseWriter, r *http.Request) error {
	var a core.Allocation
	if err := decode(r, &a); err != nil {
		return err
	}
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	ch, err := s.core.ReplaceAllocation(r.Context(), r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc"), v, a)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}

// MoveRequest is the body of POST .../allocations/{alloc}/move.
type MoveRequest struct {
	Position int `json:"position"`
}

func (s *Server) moveAllocation(w http.ResponseWriter, r *http.Request) error {
	var req MoveRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := expectedVersion(r, nil)
	if err != nil {
		return err
	}
	ch, err := s.core.MoveAllocation(r.Context(), r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc"), v, req.Position)
	if err != nil {
		return err
	}
	return settingsResponse(w, ch)
}
