package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// TestClientKeyOriginsEdit: the keys page edits a client key's allowed
// origins; the published key takes them at once, the audit log has the
// change, a bad origin is refused with nothing changed, and a server key
// has no origins to edit.
func TestClientKeyOriginsEdit(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	k, err := e.core.CreateClientKey(ctx, core.DefaultEnvironment, "shop", []string{"https://old.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := e.core.CreateSDKKey(ctx, core.DefaultEnvironment, "backend")
	if err != nil {
		t.Fatal(err)
	}
	want(t, e.get("/keys"), 200, `id="origins-`+itoa(k.ID)+`"`, "https://old.example.com\n</textarea>")
	r := e.post("/keys/"+itoa(k.ID)+"/origins", url.Values{"origins": {"https://shop.example.com\nhttp://127.0.0.1:3000"}})
	want(t, e.get(r.loc), 200, "Client key shop may now be used from https://shop.example.com, http://127.0.0.1:3000")
	if err := e.cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, origins := e.cache.ForClientKey(k.Secret); p == nil || !slices.Equal(origins, []string{"https://shop.example.com", "http://127.0.0.1:3000"}) {
		t.Fatalf("published origins: %v", origins)
	}
	page, err := e.core.Audit(ctx, 1, 0)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Entity != "sdk_key" || page.Entries[0].Action != "update" {
		t.Fatalf("audit: %v %+v", err, page.Entries)
	}
	r = e.post("/keys/"+itoa(k.ID)+"/origins", url.Values{"origins": {"https://shop.example.com/cart"}})
	want(t, r, http.StatusBadRequest, "not an origin")
	r = e.post("/keys/"+itoa(srvKey.ID)+"/origins", url.Values{"origins": {"https://shop.example.com"}})
	want(t, r, http.StatusBadRequest, "server key")
	keys, _ := e.core.SDKKeys(ctx)
	for _, got := range keys {
		if got.ID == k.ID && len(got.Origins) != 2 || got.ID == srvKey.ID && len(got.Origins) != 0 {
			t.Fatalf("after refused edits: %+v", got)
		}
	}
	// Empty: any origin.
	r = e.post("/keys/"+itoa(k.ID)+"/origins", url.Values{"origins": {""}})
	want(t, e.get(r.loc), 200, "may now be used from any site")
}
