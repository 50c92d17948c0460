package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

func start(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestFirstStartPrintsATokenOnce(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	var out bytes.Buffer
	s := start(t, server.Config{DB: dsn, Announce: &out})
	token := regexp.MustCompile(`allot_admin_[0-9a-f]+`).FindString(out.String())
	if token == "" {
		t.Fatalf("no token printed: %q", out.String())
	}
	c := apiclient.New(s.URL(), token)
	if _, err := c.Flags(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.URL() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A second start on the same database prints nothing.
	out.Reset()
	start(t, server.Config{DB: dsn, Announce: &out})
	if out.Len() != 0 {
		t.Fatalf("second start printed %q", out.String())
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Addr: addr, DB: storetest.DSN(t, "sqlite")})
	}()
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			t.Fatal("server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}

// Two replicas share one PostgreSQL database: a change made through one
// reaches the other's SDK endpoint through its poll.
func TestReplicasShareChanges(t *testing.T) {
	var dialect string
	for _, d := range storetest.Dialects() {
		if d == "postgres" {
			dialect = d
		}
	}
	if dialect == "" {
		t.Skip("ALLOT_TEST_POSTGRES=off")
	}
	dsn := storetest.DSN(t, dialect)
	const token = "allot_admin_replica-test-token"
	a := start(t, server.Config{DB: dsn, AdminToken: token, PollInterval: 50 * time.Millisecond})
	b := start(t, server.Config{DB: dsn, AdminToken: token, PollInterval: 50 * time.Millisecond})
	ctx := context.Background()
	ca := apiclient.New(a.URL(), token)
	key, err := ca.CreateSDKKey(ctx, "production", "web")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.CreateFlag(ctx, core.Flag{Key: "made-on-a", VariationType: ufc.TypeBoolean,
		Variations: []core.Variation{{Key: "on", Value: json.RawMessage(`true`)}}})
	if err != nil {
		t.Fatal(err)
	}
	url := b.URL() + "/api/flag-config/v1/config?apiKey=" + key.Secret
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), `"made-on-a"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b never served the change: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Revoking on b locks the key out of a too.
	if err := apiclient.New(b.URL(), token).RevokeSDKKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	url = a.URL() + "/api/flag-config/v1/config?apiKey=" + key.Secret
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica a still accepts a revoked key")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
