package publish

import (
	"context"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// A full read that began before a key was revoked, installed after the
// rebuild that Changed ran for the revocation (a poll racing the write),
// must not bring the revoked key back, of either kind. The interleaving
// is replayed step by step: the stale read is taken, the key revoked and
// republished, then the stale read installed, as rebuildEnv would.
func TestStaleFullReadDoesNotReviveRevokedKeys(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	c := NewCache(db, nil)
	dom := core.New(db, core.Options{Listener: c})
	server, err := dom.CreateSDKKey(ctx, core.DefaultEnvironment, "backend")
	if err != nil {
		t.Fatal(err)
	}
	client, err := dom.CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if c.ForKey(server.Secret) == nil {
		t.Fatal("the server key does not read its environment")
	}
	if p, _ := c.ForClientKey(client.Secret); p == nil {
		t.Fatal("the client key does not read its environment")
	}

	// The poll's read, before the revocations.
	c.mu.Lock()
	stale := read{seq: c.seq, full: true}
	c.mu.Unlock()
	if stale.env, _, stale.keys, stale.clients, err = db.EnvironmentVersions(ctx, core.DefaultEnvironment); err != nil {
		t.Fatal(err)
	}

	for _, id := range []int64{server.ID, client.ID} {
		if err := dom.RevokeSDKKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	after := c.Environment(core.DefaultEnvironment)
	if c.ForKey(server.Secret) != nil {
		t.Fatal("the revoked server key still reads after Changed")
	}
	if p, _ := c.ForClientKey(client.Secret); p != nil {
		t.Fatal("the revoked client key still reads after Changed")
	}

	// The poll installs what it read, late.
	cands := make([]candidate, 0, len(after.frags))
	for _, f := range after.frags {
		cands = append(cands, candidate{key: f.key, frag: f})
	}
	if _, err := c.install(&stale, cands); err != nil {
		t.Fatal(err)
	}
	if c.ForKey(server.Secret) != nil {
		t.Error("a stale read brought the revoked server key back")
	}
	if p, _ := c.ForClientKey(client.Secret); p != nil {
		t.Error("a stale read brought the revoked client key back")
	}
	if got := c.Environment(core.DefaultEnvironment).Revision; got < after.Revision {
		t.Errorf("the revision went back from %d to %d", after.Revision, got)
	}
}

// Keys created and revoked through another replica reach this one by a
// poll (Refresh's incremental path, EnvironmentVersions) as what they
// are: a client key is never a server key, and a revoked key of either
// kind stops working while the other keeps working.
func TestRevokedKeysGoneAfterRefresh(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	here := NewCache(db, nil)
	dom := core.New(db, core.Options{Listener: NewCache(db, nil)}) // the other replica
	if err := here.Refresh(ctx); err != nil {                      // a document, so that the next polls patch it
		t.Fatal(err)
	}
	server, err := dom.CreateSDKKey(ctx, core.DefaultEnvironment, "backend")
	if err != nil {
		t.Fatal(err)
	}
	client, err := dom.CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := here.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, isClient, _ := here.Lookup(client.Secret); p == nil || !isClient || here.ForKey(client.Secret) != nil {
		t.Fatal("the client key is not (only) a client key")
	}
	if p, isClient, _ := here.Lookup(server.Secret); p == nil || isClient {
		t.Fatal("the server key is not a server key")
	}
	if err := dom.RevokeSDKKey(ctx, client.ID); err != nil {
		t.Fatal(err)
	}
	if err := here.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := here.Lookup(client.Secret); p != nil {
		t.Fatal("a client key revoked elsewhere still reads after a poll")
	}
	if here.ForKey(server.Secret) == nil {
		t.Fatal("revoking the client key took the server key too")
	}
	if err := dom.RevokeSDKKey(ctx, server.ID); err != nil {
		t.Fatal(err)
	}
	if err := here.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := here.Lookup(server.Secret); p != nil {
		t.Fatal("a server key revoked elsewhere still reads after a poll")
	}
}
