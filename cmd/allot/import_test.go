package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestImportCommand: `allot import FILE --env NAME` with --dry-run first,
// then for real; the report names each flag, refused ones with the reason,
// and exits 1 when any is refused. A file that is not a UFC document is
// refused whole, with the place of the problem.
func TestImportCommand(t *testing.T) {
	_, c := startCLI(t, "allot_admin_cli-import-token-0123456789")
	run := c.try
	doc := filepath.Join(ufctest.Dir(t), "flags-v1.json")
	code, out, msg := run("import", doc, "--env", core.DefaultEnvironment, "--dry-run")
	if code != 1 || !strings.Contains(out, "dry run: nothing changed") || !strings.Contains(out, "20 would be created") ||
		!strings.Contains(out, "refused    invalid-value-flag: variations[1].value:") {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, msg)
	}
	if code, out, _ := run("flags", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after a dry run: %d %s", code, out)
	}
	code, out, _ = run("import", doc, "--json")
	var rep core.ImportReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || len(rep.Created) != 20 || len(rep.Refused) != 2 {
		t.Fatalf("import: %d %v %s", code, err, out)
	}
	// The two faulty flags, as they are.
	code, out, msg = run("import", doc, "--keep-faults")
	if code != 0 || !strings.Contains(out, "2 created") || !strings.Contains(out, "fault kept start-and-end-date-test: allocations[1].splits[0].variation:") {
		t.Fatalf("--keep-faults: %d\n%s\n%s", code, out, msg)
	}
	code, out, _ = run("flags", "get", "new-user-onboarding", "--json")
	var got struct{ Settings core.FlagSettings }
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got.Settings.Allocations) != 4 {
		t.Fatalf("imported flag: %d %v %s", code, err, out)
	}
	if a := got.Settings.Allocations[3]; a.Type != core.Imported || a.Key != "rollout" || len(a.Splits) != 1 ||
		a.Splits[0].Shards[0].Salt != "split-new-user-onboarding-rollout" || a.Splits[0].Shards[0].Ranges[0] != (core.Range{Start: 0, End: 8000}) ||
		a.Splits[0].ExtraLogging["owner"] != "hippo" {
		t.Fatalf("the rollout as imported: %+v", a)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"flags": {"a": {"enabled": "yes"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, msg := run("import", bad); code == 0 || !strings.Contains(msg, "document") {
		t.Fatalf("bad document: %d %s", code, msg)
	}
	if code, _, msg := run("import"); code != 2 || !strings.Contains(msg, "usage") {
		t.Fatalf("no file: %d %s", code, msg)
	}
}

// TestKeysOrigins: `allot keys origins ID --origin URL ...` replaces a
// client key's allowed origins (none: any); a server key has none to set.
func TestKeysOrigins(t *testing.T) {
	_, c := startCLI(t, "allot_admin_cli-import-token-0123456789")
	run := c.try
	if code, _, msg := run("keys", "create", "shop", "--client", "--origin", "https://old.example.com"); code != 0 {
		t.Fatalf("create: %d %s", code, msg)
	}
	if code, _, msg := run("keys", "create", "backend"); code != 0 {
		t.Fatalf("create: %d %s", code, msg)
	}
	code, out, msg := run("keys", "origins", "1", "--origin", "https://shop.example.com", "--origin", "HTTP://127.0.0.1:3000/")
	if code != 0 || !strings.Contains(out, "may be used from https://shop.example.com, http://127.0.0.1:3000") {
		t.Fatalf("origins: %d %q %q", code, out, msg)
	}
	if code, out, _ := run("keys", "list"); code != 0 || !strings.Contains(out, "https://shop.example.com,http://127.0.0.1:3000") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, _ := run("keys", "origins", "1"); code != 0 || !strings.Contains(out, "any origin") {
		t.Fatalf("origins, none: %d %s", code, out)
	}
	if code, _, msg := run("keys", "origins", "2", "--origin", "https://a.example"); code == 0 || !strings.Contains(msg, "server key") {
		t.Fatalf("server key: %d %s", code, msg)
	}
	if code, _, msg := run("keys", "origins", "1", "--origin", "https://a.example/path"); code == 0 || !strings.Contains(msg, "not an origin") {
		t.Fatalf("bad origin: %d %s", code, msg)
	}
}

// TestServePrecomputedRate: server.Config's precomputed rate (allot serve
// --precomputed-rate/--precomputed-burst, ALLOT_PRECOMPUTED_RATE/_BURST)
// is the per-key limit of POST /assignments; a negative rate (the flag's
// 0) turns it off; bad values are usage errors.
func TestServePrecomputedRate(t *testing.T) {
	const token = "allot_admin_cli-rate-token-0123456789"
	for _, c := range []struct {
		rate     float64
		burst    int
		requests int
		allowed  int
	}{{0.001, 3, 6, 3}, {-1, 0, 3000, 3000}} {
		t.Run(fmt.Sprint(c.rate), func(t *testing.T) {
			s := startServer(t, server.Config{AdminToken: token, PrecomputedRate: c.rate, PrecomputedBurst: c.burst})
			k, err := apiclient.New(s.URL(), token).CreateClientKey(context.Background(), core.DefaultEnvironment, "page", nil)
			if err != nil {
				t.Fatal(err)
			}
			ok := 0
			for range c.requests {
				resp, err := http.Post(s.URL()+"/assignments?apiKey="+k.Secret+"&sdkName=js-client-sdk&sdkVersion=4.14.4", "application/json",
					strings.NewReader(`{"subject_key":"a","subject_attributes":{"numericAttributes":{},"categoricalAttributes":{}}}`))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
				default:
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			if ok != c.allowed {
				t.Errorf("%d of %d requests answered, want %d", ok, c.requests, c.allowed)
			}
		})
	}
	for _, args := range [][]string{{"--precomputed-rate", "-1"}, {"--precomputed-burst", "0"}} {
		code, _, msg := runWith(nil, append([]string{"serve", "--db", t.TempDir() + "/x.db"}, args...)...)
		if code != 2 || !strings.Contains(msg, "--precomputed") {
			t.Errorf("%v: exit %d, %q", args, code, msg)
		}
	}
}
