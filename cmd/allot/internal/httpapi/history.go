package httpapi

import (
	"net/http"
)

// allocationHistory answers GET .../allocations/{alloc}/history: the
// allocation's audited changes, oldest first (core.AllocationHistory, what
// the web UI's experiment page marks on its chart).
func (s *Server) allocationHistory(w http.ResponseWriter, r *http.Request) error {
	h, err := s.core.AllocationHistory(r.Context(), r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}
