package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkConfigClientVsServer serves the same 1,000-flag environment as
// BenchmarkConfig in both forms, interleaved: a server key reading SERVER and
// a client key reading CLIENT. Both come from memory, so they should cost
// the same.
func BenchmarkConfigClientVsServer(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	serverKey := seed(b, db, benchFlags)
	ck, err := core.New(db, core.Options{}).CreateClientKey(core.WithActor(context.Background(), "bench"), "production", "bench-client", nil)
	if err != nil {
		b.Fatal(err)
	}
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := mount(httpapi.New(db, cache, nil))
	p := cache.ForKey(serverKey)
	client, err := p.Client()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d flags: SERVER %d bytes (%d gzip), CLIENT %d bytes (%d gzip)", p.Flags, len(p.Body), len(p.Gzip), len(client.Body), len(client.Gzip))
	for _, enc := range []string{"Gzip", "NotModified"} {
		for _, c := range []struct{ name, url, tag string }{
			{"Server", "/api/flag-config/v1/config?apiKey=" + serverKey + "&sdkName=node-server-sdk&sdkVersion=4.0.2", p.GzipETag},
			{"Client", "/api/flag-config/v1/config?apiKey=" + ck.Secret + "&sdkName=js-client-sdk&sdkVersion=4.14.4", client.GzipETag},
		} {
			b.Run(enc+"/"+c.name, func(b *testing.B) {
				req, _ := http.NewRequest("GET", c.url, nil)
				req.Header.Set("Accept-Encoding", "gzip, deflate, br")
				want := http.StatusOK
				if enc == "NotModified" {
					req.Header.Set("If-None-Match", c.tag)
					want = http.StatusNotModified
				}
				benchConfig(b, h, req, want)
			})
		}
	}
}

// BenchmarkBuildWithClient is the cost of rebuilding an environment and
// then its CLIENT form (obfuscating, marshalling and compressing it), which
// happens once per revision on the first client request.
func BenchmarkBuildWithClient(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	seed(b, db, benchFlags)
	cfg, err := storetest.OpsOn(db).EnvironmentConfig(context.Background(), "production")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := publish.Build(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Client(); err != nil {
			b.Fatal(err)
		}
	}
}
