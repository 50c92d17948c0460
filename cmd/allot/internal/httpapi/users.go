package httpapi

import (
	"context"
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func (s *Server) registerUsers(a func(string, func(http.ResponseWriter, *http.Request) error)) {
	a("GET /api/v1/me", s.me)
	a("GET /api/v1/users", s.listUsers)
	a("POST /api/v1/users", s.createUser)
	a("GET /api/v1/users/{id}", s.getUser)
	a("PUT /api/v1/users/{id}/role", s.setUserRole)
	a("POST /api/v1/users/{id}/disable", s.disableUser)
	a("POST /api/v1/users/{id}/enable", s.enableUser)
	a("PUT /api/v1/users/{id}/password", s.setPassword)
}

// Me is the body of GET /api/v1/me: who the token acts as.
type Me struct {
	User  core.User `json:"user"`
	Token struct {
		ID     int64     `json:"id"`
		Name   string    `json:"name"`
		Prefix string    `json:"prefix"`
		Role   core.Role `json:"role"`
	} `json:"token"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p := core.PrincipalFrom(r.Context())
	u, err := s.core.User(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	var out Me
	out.User = u
	out.Token.ID, out.Token.Name, out.Token.Prefix, out.Token.Role = p.TokenID, p.TokenName, p.TokenPrefix, p.TokenRole
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	users, err := s.core.Users(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, users)
	return nil
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Email    string    `json:"email"`
	Password string    `json:"password"`
	Role     core.Role `json:"role"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.core.CreateUser(r.Context(), req.Email, req.Password, req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := s.core.User(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// SetRoleRequest is the body of PUT /api/v1/users/{id}/role: the account's
// role, or with Environment its role in that environment only ("" role
// removing the override).
type SetRoleRequest struct {
	Role        core.Role `json:"role"`
	Environment string    `json:"environment,omitempty"`
}

func (s *Server) setUserRole(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req SetRoleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var u core.User
	if req.Environment != "" {
		u, err = s.core.SetEnvironmentRole(r.Context(), id, req.Environment, req.Role)
	} else {
		u, err = s.core.SetUserRole(r.Context(), id, req.Role)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) error {
	return s.userOp(w, r, s.core.DisableUser)
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) error {
	return s.userOp(w, r, s.core.EnableUser)
}

func (s *Server) userOp(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, id int64) (core.User, error)) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := op(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// SetPasswordRequest is the body of PUT /api/v1/users/{id}/password.
type SetPasswordRequest struct {
	Password string `json:"password"`
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req SetPasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.core.SetPassword(r.Context(), id, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
