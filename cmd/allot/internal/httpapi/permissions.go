package httpapi

import (
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// Access is the permission decision of every route this package registers:
// the action (core.ActRead, ActEdit, ActAdmin) an account needs, checked by
// core.Allowed before the handler runs, or httpx.Public for the SDK's
// routes (authorized by an SDK key, not an account). The core operation a
// handler calls checks again, in the environment it touches.
//
// A route registered without an entry needs ActAdmin, and the route-by-role
// test of internal/server fails naming it: add it here.
var Access = map[string]core.Action{
	"GET /api/flag-config/v1/config":   httpx.Public,
	"GET /api/flag-config/v1/bandits":  httpx.Public,
	"GET /api/flag-config/v1/stream":   httpx.Public,
	"POST /assignments":                httpx.Public,
	"POST /api/assignments":            httpx.Public,
	"GET /api/v1/environments":         core.ActRead,
	"POST /api/v1/environments":        core.ActAdmin,
	"GET /api/v1/environments/{env}":   core.ActRead,
	"GET /api/v1/flags":                core.ActRead,
	"POST /api/v1/flags":               core.ActEdit,
	"GET /api/v1/flags/{flag}":         core.ActRead,
	"PUT /api/v1/flags/{flag}":         core.ActEdit,
	"DELETE /api/v1/flags/{flag}":      core.ActEdit,
	"GET /api/v1/sdk-keys":             core.ActRead,
	"POST /api/v1/sdk-keys":            core.ActAdmin,
	"DELETE /api/v1/sdk-keys/{id}":     core.ActAdmin,
	"GET /api/v1/admin-tokens":         core.ActRead, // one's own; an admin's: all
	"POST /api/v1/admin-tokens":        core.ActRead, // for oneself, no wider than one's role
	"DELETE /api/v1/admin-tokens/{id}": core.ActRead, // one's own; an admin: any
	"GET /api/v1/audit":                core.ActRead,
	"GET /api/v1/assignments":          core.ActRead,
	"GET /api/v1/me":                   core.ActRead,
	"GET /api/v1/users":                core.ActRead,
	"POST /api/v1/users":               core.ActAdmin,
	"GET /api/v1/users/{id}":           core.ActRead,
	"PUT /api/v1/users/{id}/role":      core.ActAdmin,
	"POST /api/v1/users/{id}/disable":  core.ActAdmin,
	"POST /api/v1/users/{id}/enable":   core.ActAdmin,
	"PUT /api/v1/users/{id}/password":  core.ActRead, // one's own; an admin: anyone's

	"GET /api/v1/environments/{env}/flags/{flag}":                             core.ActRead,
	"PUT /api/v1/environments/{env}/flags/{flag}":                             core.ActEdit,
	"POST /api/v1/environments/{env}/flags/{flag}/allocations":                core.ActEdit,
	"PATCH /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}":       core.ActEdit,
	"DELETE /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}":      core.ActEdit,
	"POST /api/v1/environments/{env}/evaluate":                                core.ActRead, // a preview changes nothing
	"GET /api/v1/environments/{env}/config":                                   core.ActRead,
	"GET /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/summary": core.ActRead,
	"GET /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/history": core.ActRead,
	"GET /api/v1/environments/{env}/layers":                                   core.ActRead,
	"POST /api/v1/environments/{env}/layers":                                  core.ActEdit,
	"GET /api/v1/environments/{env}/layers/{layer}":                           core.ActRead,
	"DELETE /api/v1/environments/{env}/layers/{layer}":                        core.ActEdit,
	"GET /api/v1/environments/{env}/holdouts":                                 core.ActRead,
	"POST /api/v1/environments/{env}/holdouts":                                core.ActEdit,
	"GET /api/v1/environments/{env}/holdouts/{holdout}":                       core.ActRead,
	"POST /api/v1/environments/{env}/holdouts/{holdout}/flags":                core.ActEdit,
	"POST /api/v1/environments/{env}/holdouts/{holdout}/ship":                 core.ActEdit,
	"DELETE /api/v1/environments/{env}/holdouts/{holdout}/flags/{flag}":       core.ActEdit,
	"PUT /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}":         core.ActEdit,
	"POST /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/move":   core.ActEdit,
	"POST /api/v1/environments/{env}/import":                                  core.ActEdit, // the core checks edit in that environment
	"POST /api/v1/flags/{flag}/archive":                                       core.ActEdit,
	"POST /api/v1/flags/{flag}/restore":                                       core.ActEdit,
	"GET /api/v1/flags/{flag}/diff":                                           core.ActRead,
	"POST /api/v1/flags/{flag}/copy":                                          core.ActEdit, // edit in the target environment
	"PUT /api/v1/sdk-keys/{id}/origins":                                       core.ActAdmin,
}

// access is the decision for pattern: ActAdmin when it has none.
func access(pattern string) core.Action {
	if a, ok := Access[pattern]; ok {
		return a
	}
	return core.ActAdmin
}
