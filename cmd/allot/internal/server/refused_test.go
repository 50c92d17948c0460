package server_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// /readyz names a flag publishing refused and stays 200 (every replica
// refuses the same flag), and turns 503 with the reason once no poll has
// confirmed the configuration for longer than StaleAfter.
func TestReadyzNamesRefusedFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allot.db")
	s := start(t, server.Config{DB: path, AdminToken: adminToken, PollInterval: 50 * time.Millisecond})
	flag := `{"key":"color","variationType":"STRING","variations":[{"key":"red","value":"red"}]}`
	if status, _, body := do(t, nil, "POST", s.URL()+"/api/v1/flags", "Bearer "+adminToken, strings.NewReader(flag)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	// What no front end can write any more: settings naming a variation
	// the flag does not have (a write skew of the past, or a hand edit).
	raw, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO flag_settings (flag_id, environment_id, enabled, allocations, version, updated_at)
		SELECT f.id, e.id, 1, '[{"key":"all","type":"rollout","percent":10000,"variation":"purple","splitSalt":"s"}]', 1, 0 FROM flags f, environments e`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE environments SET revision = revision + 1`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil)
		if status == 200 && strings.Contains(body, "production/color: refused") && strings.Contains(body, `"purple"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never named the refused flag: %d %q", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, metrics := do(t, nil, "GET", s.URL()+"/metrics", "Bearer "+adminToken, nil)
	if !strings.Contains(metrics, `allot_config_refused_flags{environment="production"} 1`) {
		t.Errorf("metrics miss the refused flag")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A replica whose configuration nobody confirmed for longer than
	// StaleAfter leaves the rotation, saying why.
	s = start(t, server.Config{DB: path, AdminToken: adminToken, PollInterval: time.Hour, StaleAfter: 200 * time.Millisecond})
	time.Sleep(400 * time.Millisecond)
	if status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil); status != 503 || !strings.Contains(body, "configuration: ") || strings.Contains(body, "configuration: ok") {
		t.Errorf("stale: %d %q", status, body)
	}
}
