package publish_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

func TestCacheFollowsTheDatabase(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			c := publish.NewCache(db, nil)
			if c.Ready() == nil {
				t.Fatal("ready before the first refresh")
			}
			key, err := storetest.OpsOn(db).CreateSDKKey(ctx, "production", "web")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Refresh(ctx); err != nil || c.Ready() != nil {
				t.Fatalf("refresh: %v / %v", err, c.Ready())
			}
			p := c.ForKey(key.Secret)
			if p == nil || p.Environment != "production" || p.Flags != 0 {
				t.Fatalf("ForKey: %+v", p)
			}
			if c.ForKey(key.Secret+"x") != nil || c.ForKey("") != nil {
				t.Fatal("a wrong key was accepted")
			}

			// No change: the same Published is kept.
			c.Refresh(ctx)
			if c.ForKey(key.Secret) != p {
				t.Fatal("rebuilt without a change")
			}

			storetest.OpsOn(db).CreateFlag(ctx, core.Flag{Key: "f", VariationType: ufc.TypeBoolean, Variations: []core.Variation{{Key: "on", Value: json.RawMessage(`true`)}}})
			c.Refresh(ctx)
			p2 := c.ForKey(key.Secret)
			if p2 == p || p2.Flags != 1 || p2.ETag == p.ETag {
				t.Fatalf("change not picked up: %+v", p2)
			}

			storetest.OpsOn(db).RevokeSDKKey(ctx, key.ID)
			c.Refresh(ctx)
			if c.ForKey(key.Secret) != nil {
				t.Fatal("revoked key still accepted")
			}
		})
	}
}

func TestCacheRecordsKeyUse(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.Open(t, d)
			c := publish.NewCache(db, nil)
			used, _ := storetest.OpsOn(db).CreateSDKKey(ctx, "production", "used")
			idle, _ := storetest.OpsOn(db).CreateSDKKey(ctx, "production", "idle")
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if c.ForKey(used.Secret) == nil {
				t.Fatal("key refused")
			}
			if err := c.FlushUse(ctx); err != nil {
				t.Fatal(err)
			}
			keys, _ := storetest.OpsOn(db).SDKKeys(ctx)
			for _, k := range keys {
				if (k.LastUsedAt != nil) != (k.ID == used.ID) {
					t.Errorf("key %s: last used %v", k.Name, k.LastUsedAt)
				}
			}
			_ = idle
		})
	}
}
