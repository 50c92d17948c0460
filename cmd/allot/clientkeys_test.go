package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestKeysCreateClient: `allot keys create NAME --client --origin URL`
// makes a client key that reads the CLIENT document; the list shows kinds
// and origins; --origin without --client is a usage error.
func TestKeysCreateClient(t *testing.T) {
	const token = "allot_admin_cli-client-token-0123456789"
	s, c := startCLI(t, token)
	run := c.try
	code, key, msg := run("keys", "create", "shop", "--client", "--origin", "https://shop.example.com", "--origin", "http://127.0.0.1:3000")
	key = strings.TrimSpace(key)
	if code != 0 || !strings.HasPrefix(key, "allot_client_") || !strings.Contains(msg, "client key") {
		t.Fatalf("create --client: %d %q %q", code, key, msg)
	}
	resp, err := http.Get(s.URL() + "/api/flag-config/v1/config?apiKey=" + key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"format":"CLIENT"`) {
		t.Fatalf("client key reads %d %.80s", resp.StatusCode, body)
	}
	if code, out, _ := run("keys", "create", "backend"); code != 0 || !strings.HasPrefix(out, "allot_sdk_") {
		t.Fatalf("server key: %d %q", code, out)
	}
	if code, _, msg := run("keys", "create", "oops", "--origin", "https://a.example"); code != 2 || !strings.Contains(msg, "--client") {
		t.Fatalf("--origin without --client: %d %q", code, msg)
	}
	if code, _, msg := run("keys", "create", "bad", "--client", "--origin", "https://a.example/page"); code == 0 || !strings.Contains(msg, "origin") {
		t.Fatalf("bad origin: %d %q", code, msg)
	}
	_, out, _ := run("keys", "list")
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "KIND") ||
		!strings.Contains(lines[1], "client") || !strings.Contains(lines[1], "https://shop.example.com,http://127.0.0.1:3000") ||
		!strings.Contains(lines[2], "server") || strings.Contains(out, key) {
		t.Fatalf("list:\n%s", out)
	}
}
