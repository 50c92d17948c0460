package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// TestClientKeys: the keys page explains both kinds, creates a client key
// with its origins (a bad origin is a field error that creates nothing),
// shows the browser snippet for it, and lists kind and origins.
func TestClientKeys(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	want(t, e.get("/keys"), 200, "Server key", "Client key", "never put it in a web page", `id="kind-client"`, `id="origins"`)
	want(t, e.post("/keys?env=production", url.Values{"env": {"production"}, "name": {"shop"}, "kind": {"client"},
		"origins": {"https://shop.example.com/cart"}}), http.StatusBadRequest, `id="origins-error"`, "Allowed origins", "not an origin",
		`value="client" id="kind-client" checked`)
	if keys, _ := e.core.SDKKeys(context.Background()); len(keys) != 0 {
		t.Fatalf("a refused form created %d keys", len(keys))
	}
	r := e.post("/keys?env=production", url.Values{"env": {"production"}, "name": {"shop"}, "kind": {"client"},
		"origins": {"https://shop.example.com\nhttp://127.0.0.1:3000"}})
	want(t, r, 200, "Created client key shop", "@eppo/js-client-sdk-common")
	secret := regexp.MustCompile(`id="secret" value="(allot_client_[0-9a-f]+)"`).FindStringSubmatch(r.body)
	if secret == nil {
		t.Fatalf("no client secret: %s", r.body)
	}
	if p, origins := e.cache.ForClientKey(secret[1]); p == nil || len(origins) != 2 {
		t.Fatalf("client key not published with its origins: %v %v", p, origins)
	}
	if e.cache.ForKey(secret[1]) != nil {
		t.Fatal("a client key reads as a server key")
	}
	want(t, e.get("/keys"), 200, "https://shop.example.com, http://127.0.0.1:3000")
}
