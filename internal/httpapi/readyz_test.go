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

	"github.com/allot-dev/allot/internal/httpapi"
	"github.com/allot-dev/allot/internal/publish"
	"github.com/allot-dev/allot/internal/store"
	"github.com/allot-dev/allot/internal/store/storetest"
)

// /readyz names each refused flag (and stays 200: every replica refuses
// the same flag), and answers 503 with the reason once the configuration
// is older than the cache's MaxAge. The SDK endpoint of an environment
// with flags but nothing publishable answers 503, never an empty document.
func TestReadyzReportsRefusedFlagsAndStaleConfiguration(t *testing.T) {
	ctx := context.Background()
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, err := db.CreateSDKKey(ctx, store.DefaultEnvironment, "web")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := db.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateFlag(ctx, colorFlag()); err != nil {
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
	srv := httptest.NewServer(httpapi.New(db, cache, metrics, nil))
	defer srv.Close()
	body := func(path string, hdr map[string]string) (int, string) {
		resp := get(t, srv.URL+path, hdr)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, text := body("/readyz", nil)
	if code != 200 || !strings.Contains(text, "production/color: refused") || !strings.Contains(text, `"purple"`) {
		t.Fatalf("/readyz: %d %q", code, text)
	}
	code, text = body("/api/flag-config/v1/config?apiKey="+key.Secret, nil)
	if code != 503 || strings.Contains(text, "flags") {
		t.Fatalf("config of an environment whose every flag is refused: %d %q", code, text)
	}
	code, text = body("/api/v1/environments/production/config", map[string]string{"Authorization": "Bearer " + admin})
	if code != 503 || strings.Contains(text, `"flags"`) {
		t.Fatalf("admin view of an environment whose every flag is refused: %d %q", code, text)
	}
	_, text = body("/metrics", nil)
	if !strings.Contains(text, `allot_config_refused_flags{environment="production"} 1`) ||
		!strings.Contains(text, `allot_config_flag_refusals_total{environment="production"} 1`) ||
		!strings.Contains(text, "allot_config_age_seconds") {
		t.Fatalf("metrics miss the refusal or the age:\n%s", text)
	}

	skew.Store(int64(publish.DefaultMaxAge + time.Second))
	code, text = body("/readyz", nil)
	if code != 503 || !strings.Contains(text, "old") {
		t.Fatalf("/readyz with a stale configuration: %d %q", code, text)
	}
}
