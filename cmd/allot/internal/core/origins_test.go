package core_test

import (
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func TestCheckOrigins(t *testing.T) {
	got, err := core.CheckOrigins([]string{" HTTPS://Shop.Example.com/ ", "http://127.0.0.1:3000", "https://shop.example.com"})
	if err != nil || strings.Join(got, " ") != "https://shop.example.com http://127.0.0.1:3000" {
		t.Fatalf("normalized %q, %v", got, err)
	}
	if got, err := core.CheckOrigins(nil); got != nil || err != nil {
		t.Fatalf("none: %q %v", got, err)
	}
	for _, bad := range []string{"*", "example.com", "ftp://example.com", "https://example.com/path", "https://example.com?q=1",
		"https://user@example.com", "https://", "javascript:alert(1)", "https://" + strings.Repeat("a", core.MaxOriginLength)} {
		if _, err := core.CheckOrigins([]string{bad}); core.ErrorCode(err) != core.EINVALID {
			t.Errorf("%q: %v", bad, err)
		}
	}
	many := make([]string, core.MaxOrigins+1)
	for i := range many {
		many[i] = "https://a.example"
	}
	if _, err := core.CheckOrigins(many); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("%d origins: %v", len(many), err)
	}
}

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://shop.example.com", "http://127.0.0.1:3000"}
	for _, c := range []struct {
		allowed []string
		origin  string
		want    bool
	}{
		{allowed, "https://shop.example.com", true},
		{allowed, "https://SHOP.example.com", true},
		{allowed, "http://127.0.0.1:3000", true},
		{allowed, "http://127.0.0.1:3001", false},
		{allowed, "https://shop.example.com.evil.example", false},
		{allowed, "http://shop.example.com", false},
		{allowed, "null", false},
		{allowed, "", false},
		{nil, "https://anything.example", true},
		{nil, "", false},
	} {
		if got := core.OriginAllowed(c.allowed, c.origin); got != c.want {
			t.Errorf("OriginAllowed(%q, %q) = %v", c.allowed, c.origin, got)
		}
	}
}
