package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/web"
	"github.com/allot-dev/allot/internal/ufc"
)

// BenchmarkExperimentPage times the experiment page (chart, timeline,
// downloads) of an allocation holding N assignment rows (ALLOT_BENCH_ROWS,
// comma-separated; default 10000,1000000), seeded straight into SQLite over
// 30 days, with 40 audited traffic changes (39 of them changes) of the experiment and 2,000 of
// other flags in the audit log. Its peer, in the same run, is the flag page,
// which reads the same summary: the page must stay flat in N (it reads the
// per-day aggregates, never the rows) and answer in well under 100 ms.
// ALLOT_BENCH_ROUNDS (default 3) rounds alternate the two pages.
func BenchmarkExperimentPage(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if v := os.Getenv("ALLOT_BENCH_ROWS"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	rounds := 3
	if v := os.Getenv("ALLOT_BENCH_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := core.WithActor(context.Background(), "bench")
	for _, n := range sizes {
		path := storetest.DSN(b, "sqlite")
		db, err := store.Open(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		c := core.New(db, core.Options{})
		flag := func(key string) core.Flag {
			return core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
				{Key: "control", Value: json.RawMessage(`"a"`)}, {Key: "treatment", Value: json.RawMessage(`"b"`)}}}
		}
		exp := core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 1000,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
		_, ch, err := c.CreateFlagWith(ctx, flag("checkout"), core.FlagSettings{Environment: core.DefaultEnvironment, Allocations: []core.Allocation{exp}})
		if err != nil {
			b.Fatal(err)
		}
		v := ch.After.Version
		for i := range 40 {
			t := core.Percent(1000 + 100*i)
			if ch, err = c.PatchAllocation(ctx, core.DefaultEnvironment, "checkout", "exp", v, core.AllocationPatch{Traffic: &t}); err != nil {
				b.Fatal(err)
			}
			v = ch.After.Version
		}
		for i := range 20 {
			_, ch, err := c.CreateFlagWith(ctx, flag(fmt.Sprintf("other-%d", i)), core.FlagSettings{Environment: core.DefaultEnvironment, Allocations: []core.Allocation{exp}})
			if err != nil {
				b.Fatal(err)
			}
			v := ch.After.Version
			for j := range 99 {
				t := core.Percent(1000 + 10*j)
				if ch, err = c.PatchAllocation(ctx, core.DefaultEnvironment, fmt.Sprintf("other-%d", i), "exp", v, core.AllocationPatch{Traffic: &t}); err != nil {
					b.Fatal(err)
				}
				v = ch.After.Version
			}
		}
		// The rows end today, so that the changes made above are on the chart.
		t0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -29)
		storetest.SeedExperiment(b, db, path, core.DefaultEnvironment, "checkout", "exp", n, t0, 30)
		cache := publish.NewCache(db, nil)
		if err := cache.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		tok, err := c.CreateAdminToken(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		sess, err := db.CreateSession(ctx, tok.UserID, tok.ID, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		ui := web.New(db, cache, nil)
		// Rounds alternate the page and its peer, so that both see the
		// same load on a shared machine (run with -count=1).
		type pg struct{ name, path, want string }
		pages := []pg{
			{"experiment", "/flags/checkout/experiments/exp?env=production", `data-last="40"`},
			{"flag", "/flags/checkout?env=production", "Assignments: " + strconv.Itoa(n/2) + " subjects"},
		}
		var order []pg
		for range rounds {
			order = append(order, pages...)
		}
		for _, p := range order {
			b.Run(fmt.Sprintf("rows=%d/%s", n, p.name), func(b *testing.B) {
				for b.Loop() {
					req := httptest.NewRequest("GET", p.path, nil)
					req.AddCookie(&http.Cookie{Name: "allot_session", Value: sess.Secret})
					rec := httptest.NewRecorder()
					ui.ServeHTTP(rec, req)
					if rec.Code != 200 || !strings.Contains(rec.Body.String(), p.want) {
						b.Fatalf("%s: %d, no %q:\n%s", p.path, rec.Code, p.want, rec.Body.String())
					}
				}
			})
		}
		db.Close()
	}
}
