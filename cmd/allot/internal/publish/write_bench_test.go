package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// seeded holds one SQLite file per flag count, seeded once per test binary
// and copied for each benchmark run.
var (
	seedMu    sync.Mutex
	seedFiles = map[int]string{}
	seedDir   string
)

// benchFlag is one of three shapes, in turn: a running experiment behind a
// targeting rule, a rollout, a targeted allocation.
func benchSettings(key string, i int, version int64) core.FlagSettings {
	rule := []core.Rule{{Conditions: []core.Condition{
		{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["US","CA","FR"]`)},
		{Attribute: "version", Operator: "GTE", Value: json.RawMessage(`"2.1.0"`)},
	}}}
	s := core.FlagSettings{Flag: key, Environment: core.DefaultEnvironment, Enabled: true, Version: version}
	switch i % 3 {
	case 0:
		s.Allocations = []core.Allocation{{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Percent(2000 + i%7),
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "red", Weight: 5000}}, Rules: rule}}
	case 1:
		s.Allocations = []core.Allocation{{Key: "ramp", Type: core.Rollout, Percent: core.Percent(2500 + i%7), Variation: "red"}}
	default:
		s.Allocations = []core.Allocation{{Key: "beta", Type: core.Targeted, Variation: "red", Rules: rule}}
	}
	return s
}

func benchFlagDef(key string) core.Flag {
	return core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"grey"`)},
		{Key: "red", Value: json.RawMessage(`"red"`)},
		{Key: "blue", Value: json.RawMessage(`"blue"`)},
	}}
}

func benchKey(i int) string { return fmt.Sprintf("flag-%05d", i) }

// seededDB returns a fresh copy of a SQLite database holding n flags, each
// with settings in the default environment.
func seededDB(b *testing.B, n int) *store.DB {
	b.Helper()
	seedMu.Lock()
	defer seedMu.Unlock()
	ctx := context.Background()
	if seedDir == "" {
		// ALLOT_BENCH_SEED_DIR keeps the seeded files between runs (they
		// take a while to build), for interleaved comparisons.
		seedDir = os.Getenv("ALLOT_BENCH_SEED_DIR")
	}
	if seedDir == "" {
		d, err := os.MkdirTemp("", "allot-publish-bench-")
		if err != nil {
			b.Fatal(err)
		}
		seedDir = d
	}
	src, ok := seedFiles[n]
	if !ok {
		src = filepath.Join(seedDir, "seed-"+strconv.Itoa(n)+".db")
		if _, err := os.Stat(src); err == nil {
			seedFiles[n] = src
			ok = true
		}
	}
	if !ok {
		db, err := store.Open(ctx, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			k := benchKey(i)
			if _, err := storetest.OpsOn(db).CreateFlag(ctx, benchFlagDef(k)); err != nil {
				b.Fatal(err)
			}
			if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, benchSettings(k, i, 0)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "bench"); err != nil {
			b.Fatal(err)
		}
		db.Close()
		seedFiles[n] = src
	}
	dst := filepath.Join(b.TempDir(), "allot.db")
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	out.Close()
	db, err := store.Open(ctx, dst, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkAdminWrite is one admin write as a replica serves it: the
// settings of one flag change in the database, then this replica
// republishes so that its SDKs and previews see the change at once, either
// by Changed (what the domain core calls: reads and recompiles that flag)
// or by Refresh (what the handlers called before: rereads the environment,
// recompiling only what changed).
func BenchmarkAdminWrite(b *testing.B) {
	for _, how := range republishers {
		for _, n := range []int{500, 3000, 10000} {
			b.Run(how.name+"/flags="+strconv.Itoa(n), func(b *testing.B) {
				ctx := context.Background()
				db := seededDB(b, n)
				c := publish.NewCache(db, nil)
				if err := c.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
				versions := make([]int64, n)
				for i := range versions {
					versions[i] = 1
				}
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					j := (i * 7919) % n // spread the writes over the flags
					k := benchKey(j)
					s := benchSettings(k, j+i, versions[j])
					if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, s); err != nil {
						b.Fatal(err)
					}
					versions[j]++
					how.republish(c, core.DefaultEnvironment, k)
					i++
				}
				b.StopTimer()
				if p := c.Environment(core.DefaultEnvironment); p == nil || p.Flags != n {
					b.Fatalf("published %v", p)
				}
			})
		}
	}
}
