package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// TestStreamLimit: past the limit a stream request gets 503 with
// Retry-After; a slot freed by a closed stream is reused.
func TestStreamLimit(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	token, err := storetest.OpsOn(db).Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cache := publish.NewCache(db, nil)
	api := httpapi.New(db, cache, nil, httpapi.WithStreamLimit(1))
	srv := httptest.NewServer(mount(api))
	t.Cleanup(srv.Close)
	t.Cleanup(api.CloseStreams)
	key, err := apiclient.New(srv.URL, token).CreateSDKKey(ctx, "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/api/flag-config/v1/stream?apiKey=" + key.Secret
	first := get(t, url, nil)
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	second := get(t, url, nil)
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" {
		t.Fatalf("second stream: %d, Retry-After %q", second.StatusCode, second.Header.Get("Retry-After"))
	}
	first.Body.Close()
	for i := 0; ; i++ { // the server notices the closed stream at its next write
		third := get(t, url, nil)
		if third.StatusCode == 200 {
			break
		}
		if i == 100 {
			t.Fatalf("the slot was never freed: %d", third.StatusCode)
		}
		third.Body.Close()
		cache.Changed("production", nil) // a write to every stream
	}
}
