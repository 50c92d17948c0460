package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The flag's life over HTTP (issue 17): archive and restore, diff then
// copy, replace and move, with the statuses a client sees when it is
// refused; the published document follows.
func TestFlagLifeAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.api.CreateEnvironment(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		fl, err := f.api.CreateFlag(ctx, colorFlag())
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.api.AddAllocation(ctx, "staging", "color", 0, core.Allocation{Key: "ramp", Type: core.Rollout, Variation: "red", Percent: 3000})
		if err != nil {
			t.Fatal(err)
		}
		st, err = f.api.AddAllocation(ctx, "staging", "color", st.Version, core.Allocation{Key: "vip", Type: core.Targeted, Variation: "control",
			Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "plan", Operator: "ONE_OF", Value: []byte(`["vip"]`)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		st, err = f.api.MoveAllocation(ctx, "staging", "color", "vip", st.Version, 0)
		if err != nil || st.Allocations[0].Key != "vip" {
			t.Fatalf("move: %+v %v", st.Allocations, err)
		}
		_, err = f.api.MoveAllocation(ctx, "staging", "color", "vip", st.Version, 9)
		apiError(t, err, 400, "position")
		_, err = f.api.ReplaceAllocation(ctx, "staging", "color", "vip", st.Version, core.Allocation{Key: "other", Type: core.Targeted, Variation: "red"})
		apiError(t, err, 400, "key")
		_, err = f.api.MoveAllocation(ctx, "staging", "color", "vip", st.Version-1, 1)
		if e, ok := err.(*apiclient.Error); !ok || e.Status != 409 {
			t.Fatalf("stale move: %v", err)
		}

		d, err := f.api.DiffSettings(ctx, "color", "staging", "production")
		if err != nil || d.ToVersion != 0 || len(d.Differences) != 3 {
			t.Fatalf("diff: %+v %v", d, err)
		}
		if _, err := f.api.CopySettings(ctx, "color", "staging", "production", 5); err == nil {
			t.Fatal("a copy naming the wrong version went through")
		}
		out, err := f.api.CopySettings(ctx, "color", "staging", "production", d.ToVersion)
		if err != nil || len(out.Allocations) != 2 {
			t.Fatalf("copy: %+v %v", out, err)
		}
		if d, _ := f.api.DiffSettings(ctx, "color", "staging", "production"); len(d.Differences) != 0 {
			t.Fatalf("diff after copy: %+v", d.Differences)
		}
		_, err = f.api.DiffSettings(ctx, "color", "staging", "nowhere")
		if e, ok := err.(*apiclient.Error); !ok || e.Status != 404 {
			t.Fatalf("diff to an unknown environment: %v", err)
		}

		cfg, _ := f.api.Config(ctx, "production")
		if !strings.Contains(string(cfg), `"color"`) {
			t.Fatal("not published before archiving")
		}
		a, err := f.api.ArchiveFlag(ctx, "color", fl.Version)
		if err != nil || a.ArchivedAt == nil {
			t.Fatalf("archive: %+v %v", a, err)
		}
		if cfg, _ := f.api.Config(ctx, "production"); strings.Contains(string(cfg), `"color"`) {
			t.Fatal("archived but published")
		}
		_, err = f.api.ArchiveFlag(ctx, "color", a.Version)
		if e, ok := err.(*apiclient.Error); !ok || e.Status != 409 {
			t.Fatalf("archive twice: %v", err)
		}
		r, err := f.api.RestoreFlag(ctx, "color", a.Version)
		if err != nil || r.ArchivedAt != nil {
			t.Fatalf("restore: %+v %v", r, err)
		}
		if cfg, _ := f.api.Config(ctx, "production"); !strings.Contains(string(cfg), `"color"`) {
			t.Fatal("restored but not published")
		}
	})
}
