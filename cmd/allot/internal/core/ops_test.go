package core_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// The conformance suite of the operations (moved from internal/store, which
// is SQL only now): every test runs against SQLite and PostgreSQL. ops
// gives the core the old method shapes, so the suite reads as it did.

type ops struct{ *core.Core }

func (o *ops) UpdateFlagSettings(ctx context.Context, s core.FlagSettings) (before, after core.FlagSettings, err error) {
	ch, err := o.UpdateSettings(ctx, s)
	return ch.Before, ch.After, err
}

func (o *ops) AuthenticateAdmin(ctx context.Context, secret string) (core.Principal, error) {
	return o.Authenticate(ctx, secret)
}

func (o *ops) Audit(ctx context.Context, limit int, before int64) ([]core.AuditEntry, error) {
	p, err := o.Core.Audit(ctx, limit, before)
	return p.Entries, err
}
func forEachOps(t *testing.T, fn func(t *testing.T, db *ops)) {
	t.Helper()
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, &ops{core.New(storetest.Open(t, d), core.Options{})})
		})
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := core.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func ctxAs(actor string) context.Context {
	return core.WithActor(context.Background(), actor)
}

func colorFlag() core.Flag {
	return core.Flag{
		Key: "color", Description: "button color", VariationType: ufc.TypeString,
		Variations: []core.Variation{
			{Key: "red", Value: json.RawMessage(`"red"`)},
			{Key: "blue", Value: json.RawMessage(` "blue" `)},
		},
	}
}

func TestEnvironments(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		envs, err := db.Environments(ctx)
		if err != nil || len(envs) != 1 || envs[0].Name != "production" {
			t.Fatalf("fresh database: %v, %v; want just production", envs, err)
		}
		e, err := db.CreateEnvironment(ctx, "staging")
		if err != nil || e.Name != "staging" || e.Revision != 1 {
			t.Fatalf("create: %+v, %v", e, err)
		}
		_, err = db.CreateEnvironment(ctx, "staging")
		wantCode(t, err, core.ECONFLICT)
		_, err = db.CreateEnvironment(ctx, "no spaces")
		wantCode(t, err, core.EINVALID)
		_, err = db.Environment(ctx, "nope")
		wantCode(t, err, core.ENOTFOUND)
		envs, _ = db.Environments(ctx)
		if len(envs) != 2 {
			t.Fatalf("environments: %v", envs)
		}
	})
}

func TestFlags(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		prod, _ := db.Environment(ctx, "production")
		f, err := db.CreateFlag(ctx, colorFlag())
		if err != nil {
			t.Fatal(err)
		}
		if f.Version != 1 || string(f.Variations[1].Value) != `"blue"` {
			t.Fatalf("created %+v", f)
		}
		if p2, _ := db.Environment(ctx, "production"); p2.Revision <= prod.Revision {
			t.Fatalf("revision not bumped: %d -> %d", prod.Revision, p2.Revision)
		}
		_, err = db.CreateFlag(ctx, colorFlag())
		wantCode(t, err, core.ECONFLICT)

		bad := colorFlag()
		bad.Variations[0].Value = json.RawMessage(`3`)
		_, err = db.CreateFlag(ctx, bad)
		wantCode(t, err, core.EINVALID)
		if !strings.Contains(err.Error(), "variations[0].value") {
			t.Fatalf("error does not name the field: %v", err)
		}

		f.Description = "new"
		f2, err := db.UpdateFlag(ctx, f)
		if err != nil || f2.Version != 2 || f2.Description != "new" {
			t.Fatalf("update: %+v, %v", f2, err)
		}
		_, err = db.UpdateFlag(ctx, f) // stale version 1
		wantCode(t, err, core.ECONFLICT)
		f2.VariationType = ufc.TypeInteger
		_, err = db.UpdateFlag(ctx, f2)
		wantCode(t, err, core.EINVALID)

		flags, err := db.Flags(ctx)
		if err != nil || len(flags) != 1 {
			t.Fatalf("list: %v %v", flags, err)
		}
		wantCode(t, db.DeleteFlag(ctx, "color", 1), core.ECONFLICT)
		if err := db.DeleteFlag(ctx, "color", 2); err != nil {
			t.Fatal(err)
		}
		_, err = db.Flag(ctx, "color")
		wantCode(t, err, core.ENOTFOUND)
	})
}

func TestIntegerValuesNormalized(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		f, err := db.CreateFlag(ctxAs("t"), core.Flag{Key: "n", VariationType: ufc.TypeInteger,
			Variations: []core.Variation{{Key: "a", Value: json.RawMessage(`1.0`)}, {Key: "b", Value: json.RawMessage(`2e2`)}}})
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Variations[0].Value) != "1" || string(f.Variations[1].Value) != "200" {
			t.Fatalf("values %s %s", f.Variations[0].Value, f.Variations[1].Value)
		}
	})
}

func colorExperiment(traffic core.Percent) core.Allocation {
	return core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: traffic,
		Weights: []core.Weight{{Variation: "red", Weight: 5000}, {Variation: "blue", Weight: 5000}}}
}

func TestFlagSettings(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("alice")
		if _, err := db.CreateFlag(ctx, colorFlag()); err != nil {
			t.Fatal(err)
		}
		s, err := db.FlagSettings(ctx, "production", "color")
		if err != nil || s.Version != 0 || s.Enabled || len(s.Allocations) != 0 {
			t.Fatalf("fresh settings %+v, %v", s, err)
		}
		s.Enabled = true
		exp := colorExperiment(1000)
		exp.TrafficSalt = "chosen-by-client"
		s.Allocations = []core.Allocation{exp, {Key: "rest", Type: core.Rollout, Percent: 10000, Variation: "blue"}}
		_, after, err := db.UpdateFlagSettings(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		a := after.Allocations[0]
		isSalt := regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString
		if after.Version != 1 || !isSalt(a.TrafficSalt) || !isSalt(a.SplitSalt) || a.TrafficSalt == a.SplitSalt {
			t.Fatalf("after %+v", after)
		}
		if !isSalt(after.Allocations[1].SplitSalt) {
			t.Fatalf("rollout salt %q", after.Allocations[1].SplitSalt)
		}

		// Raising traffic keeps the salts.
		after.Allocations[0].Traffic = 5000
		after.Allocations[0].TrafficSalt = ""
		_, again, err := db.UpdateFlagSettings(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		if again.Allocations[0].TrafficSalt != a.TrafficSalt || again.Allocations[0].SplitSalt != a.SplitSalt || again.Version != 2 {
			t.Fatalf("salts changed: %+v -> %+v", a, again.Allocations[0])
		}
		// A stale version conflicts.
		_, _, err = db.UpdateFlagSettings(ctx, after)
		wantCode(t, err, core.ECONFLICT)

		// An unknown variation is a validation error naming the field.
		bad := again
		bad.Allocations = []core.Allocation{{Key: "x", Type: core.Targeted, Variation: "green"}}
		_, _, err = db.UpdateFlagSettings(ctx, bad)
		wantCode(t, err, core.EINVALID)
		if !strings.Contains(err.Error(), "allocations[0].variation") {
			t.Fatalf("error does not name the field: %v", err)
		}
		// Removing a variation in use is refused.
		f, _ := db.Flag(ctx, "color")
		f.Variations = f.Variations[:1]
		_, err = db.UpdateFlag(ctx, f)
		wantCode(t, err, core.EINVALID)

		// The environment config carries it.
		cfg, err := db.EnvironmentConfig(ctx, "production")
		if err != nil || len(cfg.Flags) != 1 || cfg.Flags[0].Settings.Version != 2 || !cfg.Flags[0].Settings.Enabled {
			t.Fatalf("config %+v, %v", cfg, err)
		}
		// Another environment is untouched.
		db.CreateEnvironment(ctx, "staging")
		cfg, _ = db.EnvironmentConfig(ctx, "staging")
		if len(cfg.Flags) != 1 || cfg.Flags[0].Settings.Enabled || cfg.Flags[0].Settings.Version != 0 {
			t.Fatalf("staging %+v", cfg)
		}
	})
}

func TestSettingsValidation(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("t")
		db.CreateFlag(ctx, colorFlag())
		cases := []struct {
			alloc core.Allocation
			field string
		}{
			{core.Allocation{Key: "e", Type: core.Experiment, Traffic: 100, Weights: []core.Weight{{Variation: "red", Weight: 4000}}}, "allocations[0].weights"},
			{core.Allocation{Key: "e", Type: core.Experiment, Traffic: -1, Weights: []core.Weight{{Variation: "red", Weight: 10000}}}, "allocations[0].traffic"},
			{core.Allocation{Key: "e", Type: core.Experiment, Status: "paused", Weights: []core.Weight{{Variation: "red", Weight: 10000}}}, "allocations[0].status"},
			{core.Allocation{Key: "r", Type: core.Rollout, Percent: 50, Variation: "red", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "a", Operator: "MATCHES", Value: json.RawMessage(`"(["`)}}}}}, "allocations[0].rules[0].conditions[0].value"},
			{core.Allocation{Key: "r", Type: core.Rollout, Percent: 50, Variation: "red", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "a", Operator: "GT", Value: json.RawMessage(`"1.2.x"`)}}}}}, "allocations[0].rules[0].conditions[0].value"},
			{core.Allocation{Key: "r", Type: core.Rollout, Percent: 50, Variation: "red", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "a", Operator: "EQUALS", Value: json.RawMessage(`"x"`)}}}}}, "allocations[0].rules[0].conditions[0].operator"},
			{core.Allocation{Key: "t", Type: "feature"}, "allocations[0].type"},
		}
		for _, c := range cases {
			_, _, err := db.UpdateFlagSettings(ctx, core.FlagSettings{Flag: "color", Environment: "production", Allocations: []core.Allocation{c.alloc}})
			wantCode(t, err, core.EINVALID)
			if !strings.HasPrefix(err.Error(), c.field+":") {
				t.Errorf("%+v: error %q does not name %s", c.alloc, err, c.field)
			}
		}
		// Condition values are normalized to the forms all SDKs agree on.
		s := core.FlagSettings{Flag: "color", Environment: "production", Allocations: []core.Allocation{{Key: "t", Type: core.Targeted, Variation: "red",
			Rules: []core.Rule{{Conditions: []core.Condition{
				{Attribute: "a", Operator: "ONE_OF", Value: json.RawMessage(`[true, 42, "x"]`)},
				{Attribute: "b", Operator: "GTE", Value: json.RawMessage(`"10"`)},
				{Attribute: "c", Operator: "GTE", Value: json.RawMessage(`"1.2.3"`)},
			}}}}}}
		_, after, err := db.UpdateFlagSettings(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		conds := after.Allocations[0].Rules[0].Conditions
		if string(conds[0].Value) != `["true","42","x"]` || string(conds[1].Value) != `10` || string(conds[2].Value) != `"1.2.3"` {
			t.Fatalf("normalized %s %s %s", conds[0].Value, conds[1].Value, conds[2].Value)
		}
	})
}

func TestConcurrentEditsConflict(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("t")
		db.CreateFlag(ctx, colorFlag())
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = db.UpdateFlagSettings(ctx, core.FlagSettings{Flag: "color", Environment: "production", Enabled: i%2 == 0})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch core.ErrorCode(err) {
			case "":
				ok++
			case core.ECONFLICT:
			default:
				t.Errorf("unexpected error %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d writers succeeded from version 0, want exactly 1", ok)
		}
	})
}

func TestKeysAndTokens(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("t")
		k, err := db.CreateSDKKey(ctx, "production", "web")
		if err != nil || !strings.HasPrefix(k.Secret, core.SDKKeyPrefix) || !strings.HasPrefix(k.Secret, k.Prefix) {
			t.Fatalf("key %+v, %v", k, err)
		}
		cfg, _ := db.EnvironmentConfig(ctx, "production")
		if len(cfg.KeyHashes) != 1 || cfg.KeyHashes[0] != core.HashSecret(k.Secret) {
			t.Fatalf("key hashes %v", cfg.KeyHashes)
		}
		_, err = db.CreateSDKKey(ctx, "nope", "web")
		wantCode(t, err, core.ENOTFOUND)
		keys, _ := db.SDKKeys(ctx)
		if len(keys) != 1 || keys[0].Secret != "" {
			t.Fatalf("list %+v", keys)
		}
		if err := db.RevokeSDKKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.RevokeSDKKey(ctx, k.ID), core.ENOTFOUND)
		cfg, _ = db.EnvironmentConfig(ctx, "production")
		if len(cfg.KeyHashes) != 0 {
			t.Fatalf("revoked key still live")
		}

		first, err := db.Bootstrap(ctx, "")
		if err != nil || !strings.HasPrefix(first, core.AdminTokenPrefix) {
			t.Fatalf("bootstrap %q %v", first, err)
		}
		if again, err := db.Bootstrap(ctx, ""); again != "" || err != nil {
			t.Fatalf("second bootstrap created %q %v", again, err)
		}
		tok, err := db.AuthenticateAdmin(ctx, first)
		if err != nil || tok.TokenName != "initial" || tok.Email != "admin@localhost" || tok.RoleIn("") != core.RoleAdmin {
			t.Fatalf("auth %+v %v", tok, err)
		}
		_, err = db.AuthenticateAdmin(ctx, first+"x")
		wantCode(t, err, core.EUNAUTHORIZED)
		if _, err := db.Bootstrap(ctx, "allot_admin_given-by-env-var"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AuthenticateAdmin(ctx, "allot_admin_given-by-env-var"); err != nil {
			t.Fatal(err)
		}
		// A token chosen by hand is shown by a fingerprint, never by its
		// first characters (which could be most of the secret).
		if _, err := db.Bootstrap(ctx, "my-own-secret-token-1234"); err != nil {
			t.Fatal(err)
		}
		toks, _ := db.AdminTokens(ctx)
		for _, tk := range toks {
			if tk.Name == "ALLOT_ADMIN_TOKEN" && (strings.Contains("allot_admin_given-by-env-var my-own-secret-token-1234", strings.TrimSuffix(tk.Prefix, "…")) || !strings.HasPrefix(tk.Prefix, "sha256:")) {
				t.Fatalf("a hand-chosen token is shown as %q", tk.Prefix)
			}
		}
		if err := db.RevokeAdminToken(ctx, tok.TokenID); err != nil {
			t.Fatal(err)
		}
		_, err = db.AuthenticateAdmin(ctx, first)
		wantCode(t, err, core.EUNAUTHORIZED)
	})
}

func TestAudit(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		db.CreateFlag(ctxAs("alice"), colorFlag())
		s, _ := db.FlagSettings(ctxAs("bob"), "production", "color")
		s.Enabled = true
		db.UpdateFlagSettings(ctxAs("bob"), s)
		entries, err := db.Audit(context.Background(), 10, 0)
		if err != nil || len(entries) != 2 {
			t.Fatalf("audit %+v %v", entries, err)
		}
		e := entries[0]
		if e.Actor != "bob" || e.Entity != "flag_settings" || e.Environment != "production" || !strings.Contains(string(e.Before), `"enabled":false`) || !strings.Contains(string(e.After), `"enabled":true`) {
			t.Fatalf("entry %+v (before %s, after %s)", e, e.Before, e.After)
		}
		if entries[1].Actor != "alice" || entries[1].Action != "create" || entries[1].Before != nil {
			t.Fatalf("entry %+v", entries[1])
		}
		older, _ := db.Audit(context.Background(), 10, e.ID)
		if len(older) != 1 {
			t.Fatalf("paging: %d", len(older))
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			dsn := storetest.DSN(t, d)
			db, err := store.Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			core.New(db, core.Options{}).CreateFlag(ctxAs("t"), colorFlag())
			db.Close()
			db, err = store.Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := core.New(db, core.Options{}).Flag(context.Background(), "color"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
