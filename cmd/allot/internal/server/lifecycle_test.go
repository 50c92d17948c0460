package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// A restart with an ALLOT_ADMIN_TOKEN that was revoked logs why the token
// is refused (and how to get in again) instead of a silent 401.
func TestRevokedAdminTokenIsExplained(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	s := start(t, server.Config{DB: dsn, AdminToken: adminToken})
	ctx := context.Background()
	tok, err := s.Core().Authenticate(ctx, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	// The last live token cannot be revoked: keep a second one.
	if _, err := s.Core().CreateAdminToken(ctx, "spare"); err != nil {
		t.Fatal(err)
	}
	if err := s.Core().RevokeAdminToken(ctx, tok.TokenID); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Close(cctx); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s = start(t, server.Config{DB: dsn, AdminToken: adminToken, Log: textLog(logs)})
	if !strings.Contains(logs.String(), "ALLOT_ADMIN_TOKEN was revoked") || !strings.Contains(logs.String(), "allot admin recover") {
		t.Errorf("log: %s", logs.String())
	}
	if strings.Contains(logs.String(), adminToken) {
		t.Error("the token reached the log")
	}
	if status, _, _ := do(t, nil, "GET", s.URL()+"/api/v1/flags", "Bearer "+adminToken, nil); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
	// A live token logs nothing of the kind.
	logs2 := &syncBuffer{}
	start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken, Log: textLog(logs2)})
	if strings.Contains(logs2.String(), "revoked") {
		t.Errorf("live token: %s", logs2.String())
	}
}
