package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// Changed recompiles only the flags it names; a poll afterwards reuses every
// fragment; and the result is byte for byte what a replica building from
// scratch publishes (replicas sharing a database serve identical ETags).
func TestChangedRecompilesOnlyTheNamedFlags(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			keys := []string{"a", "b", "c", "d"}
			for _, k := range keys {
				if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorDef(k)); err != nil {
					t.Fatal(err)
				}
				if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo(k, "red", 0)); err != nil {
					t.Fatal(err)
				}
			}
			c := publish.NewCache(db, nil)
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			p1 := c.Environment(core.DefaultEnvironment)

			if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo("b", "blue", 1)); err != nil {
				t.Fatal(err)
			}
			c.Changed(core.DefaultEnvironment, []string{"b"})
			p2 := c.Environment(core.DefaultEnvironment)
			for _, k := range []string{"a", "c", "d"} {
				if p2.Snapshot.Flag(k) != p1.Snapshot.Flag(k) {
					t.Errorf("flag %s was recompiled", k)
				}
			}
			if got := assigned(p2, "b"); got["MATCH:blue"] != 200 {
				t.Fatalf("b after Changed: %v", got)
			}
			var doc struct{ Flags map[string]json.RawMessage }
			if err := json.Unmarshal(p2.Body, &doc); err != nil || !bytes.Equal(p2.FlagJSON("b"), doc.Flags["b"]) || p2.FlagJSON("nope") != nil {
				t.Fatalf("FlagJSON(b) = %s, want %s (%v)", p2.FlagJSON("b"), doc.Flags["b"], err)
			}

			// A deleted flag, named with env "" (every environment).
			f, _ := storetest.OpsOn(db).Flag(ctx, "c")
			if err := storetest.OpsOn(db).DeleteFlag(ctx, "c", f.Version); err != nil {
				t.Fatal(err)
			}
			c.Changed("", []string{"c"})
			p3 := c.Environment(core.DefaultEnvironment)
			if p3.Snapshot.Flag("c") != nil || p3.Flags != 3 || p3.Snapshot.Flag("b") != p2.Snapshot.Flag("b") {
				t.Fatalf("after deleting c: %d flags", p3.Flags)
			}

			// The poll rereads the environment (its revision moved) and
			// recompiles nothing.
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			p4 := c.Environment(core.DefaultEnvironment)
			for _, k := range []string{"a", "b", "d"} {
				if p4.Snapshot.Flag(k) != p3.Snapshot.Flag(k) {
					t.Errorf("flag %s was recompiled by the poll", k)
				}
			}
			fresh := publish.NewCache(db, nil)
			if err := fresh.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			fp := fresh.Environment(core.DefaultEnvironment)
			if !bytes.Equal(fp.Body, p4.Body) || fp.ETag != p4.ETag || fp.GzipETag != p4.GzipETag || !bytes.Equal(fp.Gzip, p4.Gzip) {
				t.Fatalf("a fresh replica publishes other bytes:\n%s\n%s", fp.Body, p4.Body)
			}
			if p4.Revision != fp.Revision {
				t.Fatalf("revision %d, fresh replica %d", p4.Revision, fp.Revision)
			}
		})
	}
}

// Changed on an environment this replica has not published yet reads it
// whole: patching nothing would publish a document of only the named flags.
func TestChangedBeforeTheFirstRefreshReadsTheWholeEnvironment(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	for _, k := range []string{"a", "b"} {
		if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorDef(k)); err != nil {
			t.Fatal(err)
		}
	}
	c := publish.NewCache(db, nil)
	c.Changed(core.DefaultEnvironment, []string{"a"})
	p := c.Environment(core.DefaultEnvironment)
	if p == nil || p.Flags != 2 {
		t.Fatalf("published %+v, want both flags", p)
	}
}
