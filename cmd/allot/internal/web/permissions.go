package web

import (
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// Access is the permission decision of every route of the UI: the action
// (core.ActRead, ActEdit, ActAdmin) the signed-in account needs, checked
// by core.Allowed before the handler runs, or httpx.Public for the pages
// that need no sign-in. The core operation a handler calls checks again in
// the environment it touches, and templates hide what the account may not
// do (page.Can).
//
// A route registered without an entry needs ActAdmin, and the route-by-role
// test of internal/server fails naming it: add it here.
var Access = map[string]core.Action{
	"GET /static/":               httpx.Public,
	"GET /favicon.ico":           httpx.Public,
	"/api/":                      httpx.Public,
	"GET /signin":                httpx.Public,
	"POST /signin":               httpx.Public,
	"POST /signout":              core.ActRead,
	"GET /{$}":                   core.ActRead,
	"GET /flags":                 core.ActRead,
	"GET /flags/new":             core.ActEdit, // a form: a viewer has nothing to do there
	"POST /flags/new":            core.ActEdit,
	"GET /flags/{flag}":          core.ActRead,
	"POST /flags/{flag}/enabled": core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/status":  core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/traffic": core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/weights": core.ActEdit,
	"POST /flags/{flag}/rollouts":                    core.ActEdit,
	"GET /keys":                                      core.ActRead,
	"POST /keys":                                     core.ActAdmin,
	"POST /keys/{id}/revoke":                         core.ActAdmin,
	"GET /audit":                                     core.ActRead,
	"GET /layers":                                    core.ActRead,
	"GET /flags/{flag}/edit":                         core.ActEdit, // a form: a viewer has nothing to do there
	"POST /flags/{flag}/edit":                        core.ActEdit,
	"POST /flags/{flag}/archive":                     core.ActEdit,
	"POST /flags/{flag}/restore":                     core.ActEdit,
	"POST /flags/{flag}/delete":                      core.ActEdit,
	"GET /flags/{flag}/allocations/new":              core.ActEdit,
	"POST /flags/{flag}/allocations/new":             core.ActEdit,
	"GET /flags/{flag}/allocations/{alloc}/edit":     core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/edit":    core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/move":    core.ActEdit,
	"POST /flags/{flag}/allocations/{alloc}/remove":  core.ActEdit,
	"GET /flags/{flag}/copy":                         core.ActRead, // the diff; copying needs edit
	"POST /flags/{flag}/copy":                        core.ActEdit,
	"GET /environments":                              core.ActRead,
	"POST /environments":                             core.ActAdmin,
	"POST /keys/{id}/origins":                        core.ActAdmin,
	"POST /layers":                                   core.ActEdit,
	"POST /layers/{layer}/delete":                    core.ActEdit,
	"POST /layers/{layer}/share":                     core.ActEdit,
	"POST /layers/{layer}/leave":                     core.ActEdit,
	"POST /holdouts":                                 core.ActEdit,
	"GET /flags/{flag}/experiments/{alloc}":          core.ActRead,
	"GET /flags/{flag}/experiments/{alloc}/export":   core.ActRead, // a download of the assignment table: viewers read everything
	"GET /holdouts/{holdout}":                        core.ActRead,
	"POST /holdouts/{holdout}/flags":                 core.ActEdit,
	"POST /holdouts/{holdout}/ship":                  core.ActEdit,
	"POST /holdouts/{holdout}/remove":                core.ActEdit,
	"GET /accounts":                                  core.ActRead,
	"POST /accounts":                                 core.ActAdmin,
	"POST /accounts/{id}/role":                       core.ActAdmin,
	"POST /accounts/{id}/disable":                    core.ActAdmin,
	"POST /accounts/{id}/password":                   core.ActRead, // one's own; an admin: anyone's
	"POST /accounts/{id}/enable":                     core.ActAdmin,
	"GET /tokens":                                    core.ActRead, // one's own; an admin: everyone's
	"POST /tokens":                                   core.ActRead, // for oneself, no wider than one's role
	"POST /tokens/{id}/revoke":                       core.ActRead, // one's own; an admin: any
	"GET /import":                                    core.ActEdit, // a form: a viewer has nothing to do there
	"POST /import":                                   core.ActEdit,
	"/":                                              core.ActRead, // "no such page", once signed in
}

// access is the decision for pattern: ActAdmin when it has none.
func access(pattern string) core.Action {
	if a, ok := Access[pattern]; ok {
		return a
	}
	return core.ActAdmin
}
