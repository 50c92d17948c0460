package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
)

// experimentHistory prints an experiment's audited changes, oldest first:
// what the web UI's experiment page marks on its chart.
func experimentHistory(ctx context.Context, e *env, c *apiclient.Client, envName, flagKey, exp string, asJSON bool) error {
	h, err := c.AllocationHistory(ctx, envName, flagKey, exp)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, h)
	}
	if len(h.Events) == 0 {
		fmt.Fprintf(e.stdout, "no changes of %s of flag %s recorded in %s\n", exp, flagKey, envName)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(h.Events) > 0 {
		fmt.Fprintln(tw, "WHEN (UTC)\tWHO\tCHANGE")
	}
	for _, ev := range h.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ev.At.UTC().Format("2006-01-02 15:04"), ev.Actor, ev.Describe())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !h.Complete {
		fmt.Fprintln(e.stdout, "(older changes not shown: the history reads the flag's last 500 audit entries in the environment; allot audit has them all)")
	}
	return nil
}
