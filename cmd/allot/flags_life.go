package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The life of a flag from the CLI (issue 17): update, archive, restore,
// copy between environments (the diff first), move and replace
// allocations. Each is one API call through apiclient.

type lifeOpts struct {
	from, to, owner *string
	yes, noTags     *bool
	position        *int
	tags            *multi
}

func lifeFlags(a *adminFlags) lifeOpts {
	o := lifeOpts{tags: &multi{}}
	o.from = a.fs.String("from", "", "copy: the environment to copy from")
	o.to = a.fs.String("to", "", "copy: the environment to copy to")
	o.yes = a.fs.Bool("yes", false, "copy: apply the copy (without it, only the diff is printed)")
	o.position = a.fs.Int("position", -1, "move: the new position of the allocation (0 is first)")
	o.owner = a.fs.String("owner", "", "update: the flag's owner")
	o.noTags = a.fs.Bool("no-tags", false, "update: remove every tag")
	a.fs.Var(o.tags, "tag", "update: a tag (repeatable; replaces the tags)")
	return o
}

func runFlagLife(ctx context.Context, e *env, a *adminFlags, c *apiclient.Client, sub, key string, o lifeOpts, desc, file, alloc string, vars multi, asJSON bool) error {
	set := map[string]bool{}
	a.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch sub {
	case "update":
		f, err := c.Flag(ctx, key)
		if err != nil {
			return err
		}
		if file != "" {
			var next core.Flag
			if err := readJSONFile(e, file, &next); err != nil {
				return err
			}
			next.Key, next.Version = key, f.Version
			f = next
		}
		if set["description"] {
			f.Description = desc
		}
		if set["owner"] {
			f.Owner = *o.owner
		}
		if len(*o.tags) > 0 {
			f.Tags = *o.tags
		}
		if *o.noTags {
			f.Tags = nil
		}
		for _, p := range vars {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return &exitError{code: 2, err: fmt.Errorf("--variation %q: want key=value", p)}
			}
			val := variationValue(f.VariationType, v)
			found := false
			for i := range f.Variations {
				if f.Variations[i].Key == k {
					f.Variations[i].Value, found = val, true
				}
			}
			if !found {
				f.Variations = append(f.Variations, core.Variation{Key: k, Value: val})
			}
		}
		out, err := c.UpdateFlag(ctx, f)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	case "archive", "restore":
		f, err := c.Flag(ctx, key)
		if err != nil {
			return err
		}
		op := c.ArchiveFlag
		if sub == "restore" {
			op = c.RestoreFlag
		}
		out, err := op(ctx, key, f.Version)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(e.stdout, out)
		}
		if sub == "archive" {
			fmt.Fprintf(e.stdout, "Archived %s: no environment publishes it; SDKs get their defaults. 'allot flags restore %s' brings it back.\n", key, key)
		} else {
			fmt.Fprintf(e.stdout, "Restored %s: every environment publishes it again with the settings it had.\n", key)
		}
		return nil
	case "copy":
		if *o.from == "" || *o.to == "" {
			return usageErr(a)
		}
		d, err := c.DiffSettings(ctx, key, *o.from, *o.to)
		if err != nil {
			return err
		}
		if !*o.yes {
			if asJSON {
				return printJSON(e.stdout, d)
			}
			printDiff(e, d.Differences, key, *o.from, *o.to)
			if len(d.Differences) > 0 {
				fmt.Fprintf(e.stdout, "\nNothing changed yet: run again with --yes to copy.\n")
			}
			return nil
		}
		out, err := c.CopySettings(ctx, key, *o.from, *o.to, d.ToVersion)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(e.stdout, out)
		}
		printDiff(e, d.Differences, key, *o.from, *o.to)
		fmt.Fprintf(e.stdout, "\nCopied the settings of %s from %s to %s.\n", key, *o.from, *o.to)
		printWarnings(e, out)
		return nil
	case "move", "replace":
		if alloc == "" {
			return usageErr(a)
		}
		s, err := c.Settings(ctx, *a.env, key)
		if err != nil {
			return err
		}
		if sub == "move" {
			if *o.position < 0 {
				return usageErr(a)
			}
			out, err := c.MoveAllocation(ctx, *a.env, key, alloc, s.Version, *o.position)
			if err != nil {
				return err
			}
			printWarnings(e, out)
			return printJSON(e.stdout, out.FlagSettings)
		}
		if file == "" {
			return usageErr(a)
		}
		var al core.Allocation
		if err := readJSONFile(e, file, &al); err != nil {
			return err
		}
		out, err := c.ReplaceAllocation(ctx, *a.env, key, alloc, s.Version, al)
		if err != nil {
			return err
		}
		printWarnings(e, out)
		return printJSON(e.stdout, out.FlagSettings)
	}
	return usageErr(a)
}

func printDiff(e *env, d []core.Difference, key, from, to string) {
	if len(d) == 0 {
		fmt.Fprintf(e.stdout, "%s has the same settings in %s and %s: nothing to copy.\n", key, from, to)
		return
	}
	fmt.Fprintf(e.stdout, "Copying %s from %s to %s changes, in %s:\n\n", key, from, to, to)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tNOW\tAFTER THE COPY")
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	}
	for _, x := range d {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Path, dash(x.Before), dash(x.After))
	}
	tw.Flush()
}
