package httpapi_test

import (
	"context"
	"database/sql"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// A refused flag is counted in the metrics, and the cache is not ready
// once the configuration is older than its MaxAge (internal/server's
// /readyz reports both). The SDK endpoint of an environment
// with flags but nothing publishable answers 503, never an empty document.
func TestReadyzReportsRefusedFlagsAndStaleConfiguration(t *testing.T) {
	ctx := context.Background()
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "web")
	if err != nil {
		t.Fatal(err)
	}
	client, err := core.New(db, core.Options{}).CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := storetest.OpsOn(db).Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorFlag()); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO flag_settings (flag_id, environment_id, enabled, allocations, version, updated_at)
		SELECT f.id, e.id, 1, '[{"key":"all","type":"rollout","percent":10000,"variation":"purple","splitSalt":"s"}]', 1, 0 FROM flags f, environments e`); err != nil {
		t.Fatal(err)
	}

	var skew atomic.Int64
	metrics := httpapi.NewMetrics()
	cache := publish.NewCache(db, nil)
	cache.OnRefused = metrics.ObserveRefused
	cache.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	metrics.WatchConfigAge(cache.Age)
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mount(httpapi.New(db, cache, nil)))
	defer srv.Close()
	body := func(path string, hdr map[string]string) (int, string) {
		resp := get(t, srv.URL+path, hdr)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, text := body("/api/flag-config/v1/config?apiKey="+key.Secret, nil)
	if code != 503 || strings.Contains(text, "flags") {
		t.Fatalf("config of an environment whose every flag is refused: %d %q", code, text)
	}
	// The CLIENT form has nothing to be built from either: a client key,
	// or an Eppo client SDK, gets the same retryable answer, not an error.
	for _, q := range []string{"apiKey=" + client.Secret, "apiKey=" + key.Secret + "&sdkName=js-client-sdk"} {
		resp := get(t, srv.URL+"/api/flag-config/v1/config?"+q, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(string(b), "unavailable:") {
			t.Fatalf("CLIENT config of an environment whose every flag is refused: %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	code, text = body("/api/v1/environments/production/config", map[string]string{"Authorization": "Bearer " + admin})
	if code != 503 || strings.Contains(text, `"flags"`) {
		t.Fatalf("admin view of an environment whose every flag is refused: %d %q", code, text)
	}
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if text := rec.Body.String(); !strings.Contains(text, `allot_config_refused_flags{environment="production"} 1`) ||
		!strings.Contains(text, `allot_config_flag_refusals_total{environment="production"} 1`) ||
		!strings.Contains(text, "allot_config_age_seconds") {
		t.Fatalf("metrics miss the refusal or the age:\n%s", text)
	}
	skew.Store(int64(publish.DefaultMaxAge + time.Second))
	if err := cache.Ready(); err == nil || !strings.Contains(err.Error(), "old") {
		t.Fatalf("Ready with a stale configuration: %v", err)
	}
}
