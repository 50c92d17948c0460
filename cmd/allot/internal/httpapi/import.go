package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// ImportRequest is the wrapped body of POST
// /api/v1/environments/{env}/import, needed only to pass the names that
// resolve an obfuscated CLIENT document's hashes; a SERVER document can be
// posted as the body itself.
type ImportRequest struct {
	Document   json.RawMessage `json:"document"`
	Names      []string        `json:"names,omitempty"`
	DryRun     bool            `json:"dryRun,omitempty"`
	KeepFaults bool            `json:"keepFaults,omitempty"`
}

// importDocument loads a UFC document into an environment (core.Import).
// The body is the document, or an ImportRequest; ?dryRun=true reports what
// would happen and changes nothing; ?keepFaults=true keeps the faults that
// only some subjects meet (core.ImportRequest.KeepFaults). The answer is the report, 200 even when
// some flags are refused (each with its reason); a document that cannot be
// read is a 400 and changes nothing.
func (s *Server) importDocument(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, core.MaxImportBytes+1))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &httpx.TooLargeError{Limit: min(mb.Limit, core.MaxImportBytes)}
		}
		return core.Invalid("body", "could not be read: %s", err)
	}
	if len(body) > core.MaxImportBytes {
		return &httpx.TooLargeError{Limit: core.MaxImportBytes}
	}
	req := core.ImportRequest{Environment: r.PathValue("env"), Document: body}
	var wrapped ImportRequest
	// Only a wrapper has "document"; a UFC document has "flags".
	if bytes.Contains(body, []byte(`"document"`)) && json.Unmarshal(body, &wrapped) == nil && len(wrapped.Document) > 0 {
		req.Document, req.Names, req.DryRun, req.KeepFaults = wrapped.Document, wrapped.Names, wrapped.DryRun, wrapped.KeepFaults
	}
	for name, dst := range map[string]*bool{"dryRun": &req.DryRun, "keepFaults": &req.KeepFaults} {
		if q := r.URL.Query().Get(name); q != "" {
			v, err := strconv.ParseBool(q)
			if err != nil {
				return core.Invalid(name, "must be true or false")
			}
			*dst = *dst || v
		}
	}
	rep, err := s.core.Import(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
