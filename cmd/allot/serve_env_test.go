package main

import (
	"regexp"
	"strings"
	"testing"
)

// serve -h names every flag with its environment variable.
func TestServeHelpListsEnv(t *testing.T) {
	code, _, help := runWith(nil, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(help, -1)
	if len(flags) < 11 {
		t.Fatalf("serve -h lists %d flags:\n%s", len(flags), help)
	}
	for _, f := range flags {
		if !strings.Contains(help, "env "+envName(f[1])) {
			t.Errorf("serve -h: --%s has no env %s", f[1], envName(f[1]))
		}
	}
	for _, w := range []string{"ALLOT_ADDR", "ALLOT_DB", "ALLOT_TRUSTED_PROXY", "ALLOT_ADMIN_TOKEN", "ALLOT_METRICS_TOKEN"} {
		if !strings.Contains(help, w) {
			t.Errorf("serve -h does not mention %s", w)
		}
	}
}

// The environment sets flags the command line leaves alone; a flag on the
// command line wins; a bad value names its variable but does not print it.
func TestServeEnv(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"env sets a flag", map[string]string{"ALLOT_LOG_LEVEL": "loud"}, nil, "--log-level"},
		{"env sets retention", map[string]string{"ALLOT_RETENTION": "soon"}, nil, "--retention"},
		{"flag wins over env", map[string]string{"ALLOT_METRICS": "everyone", "ALLOT_LOG_LEVEL": "loud"}, []string{"--metrics", "off"}, "--log-level"},
		{"list env", map[string]string{"ALLOT_TRUSTED_PROXY": "10.0.0.0/8, not-an-ip-secret"}, nil, "ALLOT_TRUSTED_PROXY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runWith(c.vars, append([]string{"serve", "--db", t.TempDir() + "/x.db"}, c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, %q; want 2 and %q", code, errOut, c.want)
			}
			if strings.Contains(errOut, "metrics") && c.name == "flag wins over env" {
				t.Errorf("ALLOT_METRICS overrode --metrics: %q", errOut)
			}
		})
	}
}
