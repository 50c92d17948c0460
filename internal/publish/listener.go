package publish

import (
	"context"
	"time"
)

// Changed republishes after a committed change, so this replica serves it
// at once; other replicas pick it up on their next poll. It makes *Cache a
// core.Listener.
//
// (Written on the core branch so that it compiles alone; the publish
// branch's own Changed, with incremental recompilation, replaces this file
// at merge.)
func (c *Cache) Changed(env string, flags []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Refresh(ctx); err != nil {
		c.log.Error("republishing after a change failed", "environment", env, "flags", flags, "err", err)
	}
}
