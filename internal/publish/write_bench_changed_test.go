package publish_test

import "github.com/allot-dev/allot/internal/publish"

// republish is what the domain core calls after committing a change to
// one flag's settings.
func republish(c *publish.Cache, env, flag string) { c.Changed(env, []string{flag}) }
