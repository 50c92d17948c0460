package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The list commands print a table by default and JSON with --json; no
// listing prints a key's or token's secret.
func TestListCommandsJSON(t *testing.T) {
	const token = "allot_admin_cli-json-token-0123456789"
	_, c := startCLI(t, token)
	run := c.out
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
