package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// Email and password sign-in: a wrong password is a 401 next to the field;
// after five failures within a minute the sixth try, right password or not,
// is a 429 with Retry-After, and nothing signs in.
func TestPasswordSignInRateLimited(t *testing.T) {
	e := newEnv(t)
	if _, err := e.core.CreateUser(context.Background(), "kim@example.com", "kim's long password", core.RoleEditor); err != nil {
		t.Fatal(err)
	}
	try := func(password string) resp {
		t.Helper()
		m := csrfField.FindStringSubmatch(e.get("/signin").body)
		return e.do("POST", "/signin", url.Values{"csrf": {m[1]}, "email": {"Kim@Example.com"}, "password": {password}, "next": {"/flags"}})
	}
	for range core.SigninFailures {
		want(t, try("wrong"), http.StatusUnauthorized, `id="password-error"`, "Wrong email or password", `value="Kim@Example.com"`)
	}
	r := try("kim's long password")
	want(t, r, http.StatusTooManyRequests, "too many failed sign-ins")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if r := e.get("/flags"); r.status != http.StatusSeeOther {
		t.Fatalf("signed in while limited: %d", r.status)
	}

}
