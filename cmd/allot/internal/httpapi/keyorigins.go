package httpapi

import "net/http"

// KeyOriginsRequest is the body of PUT /api/v1/sdk-keys/{id}/origins.
type KeyOriginsRequest struct {
	Origins []string `json:"origins"`
}

// setKeyOrigins replaces a client key's allowed origins.
func (s *Server) setKeyOrigins(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req KeyOriginsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := s.core.SetKeyOrigins(r.Context(), id, req.Origins)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
