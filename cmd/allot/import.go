package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func init() {
	register("import", "load a UFC document (Eppo's flags-v1.json, SERVER or CLIENT) into an environment, keeping every subject's variation", runImport)
}

// runImport is a thin front end over core.Import through the API: it reads
// the document (and, for an obfuscated one, the names file), posts it, and
// prints the report.
func runImport(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "allot import",
		"allot import FILE --env NAME [--dry-run] [--keep-faults] [--names FILE] [--json]")
	dry := a.fs.Bool("dry-run", false, "check everything and report what would happen; change nothing")
	keep := a.fs.Bool("keep-faults", false, "import flags whose only faults make some subjects get the default (a value that does not fit the type, a split to a missing variation) as they are, rather than refusing them")
	namesPath := a.fs.String("names", "", "for an obfuscated CLIENT document: a `file` of the flag keys, attribute names and ONE_OF values it hashed, one a line")
	asJSON := a.fs.Bool("json", false, "print the report as JSON")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr(a)
	}
	var doc []byte
	if pos[0] == "-" {
		doc, err = io.ReadAll(io.LimitReader(e.stdin, core.MaxImportBytes+1))
	} else {
		doc, err = readLimited(pos[0], core.MaxImportBytes)
	}
	if err != nil {
		return err
	}
	if len(doc) > core.MaxImportBytes {
		return &exitError{code: 2, err: fmt.Errorf("%s is over %d bytes, the import limit", pos[0], core.MaxImportBytes)}
	}
	var names []string
	if *namesPath != "" {
		f, err := os.Open(*namesPath)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), core.MaxValueBytes+1)
		for sc.Scan() {
			if line := strings.TrimRight(sc.Text(), "\r"); line != "" {
				names = append(names, line)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("--names: %w", err)
		}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	rep, err := c.Import(ctx, *a.env, doc, apiclient.ImportOptions{Names: names, DryRun: *dry, KeepFaults: *keep})
	if err != nil {
		return err
	}
	refused := &exitError{code: 1, err: errors.New("some flags were refused (see the report)")}
	if *asJSON {
		if err := printJSON(e.stdout, rep); err != nil || len(rep.Refused) == 0 {
			return err
		}
		return refused
	}
	verb := map[bool]string{true: "would be ", false: ""}[rep.DryRun]
	fmt.Fprintf(e.stdout, "%s document into %s%s: %d %screated, %d %supdated, %d unchanged, %d refused\n",
		rep.Format, rep.Environment, map[bool]string{true: " (dry run: nothing changed)", false: ""}[rep.DryRun],
		len(rep.Created), verb, len(rep.Updated), verb, len(rep.Unchanged), len(rep.Refused))
	for _, k := range rep.Created {
		fmt.Fprintf(e.stdout, "  created    %s\n", k)
	}
	for _, k := range rep.Updated {
		fmt.Fprintf(e.stdout, "  updated    %s\n", k)
	}
	for _, r := range rep.Faults {
		fmt.Fprintf(e.stdout, "  fault kept %s: %s: %s\n", r.Flag, r.Field, r.Reason)
	}
	for _, r := range rep.Refused {
		field := ""
		if r.Field != "" {
			field = r.Field + ": "
		}
		fmt.Fprintf(e.stdout, "  refused    %s: %s%s\n", r.Flag, field, r.Reason)
	}
	if len(rep.Refused) > 0 {
		return refused
	}
	return nil
}

// readLimited reads at most limit+1 bytes of path.
func readLimited(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(limit)+1))
}
