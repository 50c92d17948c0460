package httpapi

import (
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// Layers and holdouts (issue 15): thin handlers over the core, which holds
// every rule (docs/layers-and-holdouts.md).

func (s *Server) registerLayers(a func(string, func(http.ResponseWriter, *http.Request) error)) {
	a("GET /api/v1/environments/{env}/layers", s.listLayers)
	a("POST /api/v1/environments/{env}/layers", s.createLayer)
	a("GET /api/v1/environments/{env}/layers/{layer}", s.getLayer)
	a("DELETE /api/v1/environments/{env}/layers/{layer}", s.deleteLayer)
	a("GET /api/v1/environments/{env}/holdouts", s.listHoldouts)
	a("POST /api/v1/environments/{env}/holdouts", s.createHoldout)
	a("GET /api/v1/environments/{env}/holdouts/{holdout}", s.getHoldout)
	a("POST /api/v1/environments/{env}/holdouts/{holdout}/flags", s.addHoldoutFlag)
	a("POST /api/v1/environments/{env}/holdouts/{holdout}/ship", s.shipHoldout)
	a("DELETE /api/v1/environments/{env}/holdouts/{holdout}/flags/{flag}", s.removeHoldoutFlag)
}

// CreateLayerRequest is the body of POST .../layers.
type CreateLayerRequest struct {
	Name string `json:"name"`
}

// CreateHoldoutRequest is the body of POST .../holdouts.
type CreateHoldoutRequest struct {
	Key     string       `json:"key"`
	Percent core.Percent `json:"percent"`
	// Global: cover every experiment created in the environment from now
	// on.
	Global bool `json:"global,omitempty"`
}

// HoldoutFlagRequest is the body of POST .../holdouts/{holdout}/flags
// (StatusQuo) and .../ship (Winner). Allocation may be left out when the
// flag has one experiment.
type HoldoutFlagRequest struct {
	Flag       string `json:"flag"`
	Allocation string `json:"allocation,omitempty"`
	StatusQuo  string `json:"statusQuo,omitempty"`
	Winner     string `json:"winner,omitempty"`
}

// HoldoutResponse is a holdout after a change, with what the change does
// to the flag's subjects.
type HoldoutResponse struct {
	core.Holdout
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) listLayers(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.core.Layers(r.Context(), r.PathValue("env"))
	if err != nil {
		return err
	}
	if ls == nil {
		ls = []core.Layer{}
	}
	writeJSON(w, http.StatusOK, ls)
	return nil
}

func (s *Server) createLayer(w http.ResponseWriter, r *http.Request) error {
	var req CreateLayerRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	l, err := s.core.CreateLayer(r.Context(), r.PathValue("env"), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, l)
	return nil
}

func (s *Server) getLayer(w http.ResponseWriter, r *http.Request) error {
	l, err := s.core.Layer(r.Context(), r.PathValue("env"), r.PathValue("layer"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) deleteLayer(w http.ResponseWriter, r *http.Request) error {
	if err := s.core.DeleteLayer(r.Context(), r.PathValue("env"), r.PathValue("layer")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listHoldouts(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.core.Holdouts(r.Context(), r.PathValue("env"))
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []core.Holdout{}
	}
	writeJSON(w, http.StatusOK, hs)
	return nil
}

func (s *Server) createHoldout(w http.ResponseWriter, r *http.Request) error {
	var req CreateHoldoutRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	h, err := s.core.CreateHoldout(r.Context(), r.PathValue("env"), req.Key, req.Percent, req.Global)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func (s *Server) getHoldout(w http.ResponseWriter, r *http.Request) error {
	h, err := s.core.Holdout(r.Context(), r.PathValue("env"), r.PathValue("holdout"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) addHoldoutFlag(w http.ResponseWriter, r *http.Request) error {
	var req HoldoutFlagRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Winner != "" {
		return core.Invalid("winner", "is set by POST .../ship, not here")
	}
	h, ch, err := s.core.AddHoldoutFlag(r.Context(), r.PathValue("env"), r.PathValue("holdout"), req.Flag, req.Allocation, req.StatusQuo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, HoldoutResponse{Holdout: h, Warnings: ch.Warnings})
	return nil
}

func (s *Server) shipHoldout(w http.ResponseWriter, r *http.Request) error {
	var req HoldoutFlagRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Winner == "" {
		return core.Invalid("winner", "is required")
	}
	if req.StatusQuo != "" {
		return core.Invalid("statusQuo", "is chosen when the flag is added to the holdout")
	}
	h, ch, err := s.core.ShipHoldout(r.Context(), r.PathValue("env"), r.PathValue("holdout"), req.Flag, req.Allocation, req.Winner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, HoldoutResponse{Holdout: h, Warnings: ch.Warnings})
	return nil
}

// removeHoldoutFlag takes a flag's experiment out of a holdout. Query:
// allocation (when the flag has several experiments) and confirm=true when
// the holdout's subjects of the flag may move (docs/layers-and-holdouts.md).
func (s *Server) removeHoldoutFlag(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	confirm := false
	switch q.Get("confirm") {
	case "", "false":
	case "true":
		confirm = true
	default:
		return core.Invalid("confirm", "must be true or false")
	}
	h, ch, err := s.core.RemoveHoldoutFlag(r.Context(), r.PathValue("env"), r.PathValue("holdout"), r.PathValue("flag"), q.Get("allocation"), confirm)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, HoldoutResponse{Holdout: h, Warnings: ch.Warnings})
	return nil
}
