package publish_test

import (
	"context"

	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

// republishers are the ways a replica republishes after a write.
var republishers = []struct {
	name      string
	republish func(c *publish.Cache, env, flag string)
}{
	{"changed", func(c *publish.Cache, env, flag string) { c.Changed(env, []string{flag}) }},
	{"refresh", func(c *publish.Cache, env, flag string) {
		if err := c.Refresh(context.Background()); err != nil {
			panic(err)
		}
	}},
}
