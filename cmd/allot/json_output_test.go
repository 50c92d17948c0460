package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// The list commands print a table by default and JSON with --json; no
// listing prints a key's or token's secret.
func TestListCommandsJSON(t *testing.T) {
	const token = "allot_admin_cli-json-token-0123456789"
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "a.db"), AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string {
			return map[string]string{"ALLOT_SERVER": s.URL(), "ALLOT_TOKEN": token}[k]
		}}
		if code := Main(context.Background(), e, args); code != 0 {
			t.Fatalf("allot %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	run("flags", "create", "button", "--variation", "control=old", "--variation", "treatment=new")
	secret := strings.TrimSpace(run("keys", "create", "web"))
	if !strings.HasPrefix(secret, "allot_sdk_") {
		t.Fatalf("keys create: %q", secret)
	}
	for _, c := range []struct {
		args  []string
		table string // a column header of the table
		want  string // in the JSON
	}{
		{[]string{"environments", "list"}, "REVISION", `"name": "production"`},
		{[]string{"flags", "list"}, "VARIATIONS", `"key": "button"`},
		{[]string{"keys", "list"}, "PREFIX", `"name": "web"`},
		{[]string{"keys", "admin-list"}, "PREFIX", `"prefix"`},
		{[]string{"audit"}, "", `"action"`},
	} {
		name := strings.Join(c.args, " ")
		plain := run(c.args...)
		if c.table != "" && !strings.Contains(plain, c.table) {
			t.Errorf("%s: no table:\n%s", name, plain)
		}
		js := run(append(c.args, "--json")...)
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Errorf("%s --json: not JSON (%v):\n%s", name, err, js)
		}
		if !strings.Contains(js, c.want) {
			t.Errorf("%s --json lacks %s:\n%s", name, c.want, js)
		}
		for _, secret := range []string{secret, token} {
			if strings.Contains(plain+js, secret) {
				t.Errorf("%s printed a secret", name)
			}
		}
	}
}
