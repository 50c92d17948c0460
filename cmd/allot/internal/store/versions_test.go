package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

func TestEnvironmentVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, k := range []string{"b", "a"} {
			if _, err := storetest.OpsOn(db).CreateFlag(ctx, core.Flag{Key: k, VariationType: ufc.TypeBoolean, Variations: []core.Variation{{Key: "on", Value: json.RawMessage(`true`)}}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, core.FlagSettings{Flag: "b", Environment: core.DefaultEnvironment, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		key, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "web")
		if err != nil {
			t.Fatal(err)
		}
		// A client key is not a server key: EnvironmentVersions keeps them apart.
		ck, err := storetest.OpsOn(db).CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
		if err != nil {
			t.Fatal(err)
		}
		e, versions, keys, clients, err := db.EnvironmentVersions(ctx, core.DefaultEnvironment)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := storetest.OpsOn(db).EnvironmentConfig(ctx, core.DefaultEnvironment)
		if err != nil {
			t.Fatal(err)
		}
		if len(clients) != 1 || clients[0].Hash != core.HashSecret(ck.Secret) {
			t.Fatalf("client keys %+v", clients)
		}
		if e.Revision != cfg.Environment.Revision || len(versions) != 2 || len(keys) != 1 || keys[0] != core.HashSecret(key.Secret) {
			t.Fatalf("environment %+v, versions %+v, %d keys", e, versions, len(keys))
		}
		for i, v := range versions {
			fc := cfg.Flags[i]
			if v.Key != fc.Flag.Key || v.Version != fc.Flag.Version || !v.CreatedAt.Equal(fc.Flag.CreatedAt) || v.SettingsVersion != fc.Settings.Version {
				t.Errorf("versions[%d] = %+v, config says %s %d %v %d", i, v, fc.Flag.Key, fc.Flag.Version, fc.Flag.CreatedAt, fc.Settings.Version)
			}
		}
		if versions[0].Key != "a" || versions[0].SettingsVersion != 0 || versions[1].SettingsVersion != 1 {
			t.Fatalf("versions %+v", versions)
		}
		if _, _, _, _, err := db.EnvironmentVersions(ctx, "nope"); core.ErrorCode(err) != core.ENOTFOUND {
			t.Fatalf("unknown environment: %v", err)
		}
	})
}
