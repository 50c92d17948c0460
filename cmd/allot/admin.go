package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/internal/ufc"
)

// The management commands talk to a running server through the API client.

func init() {
	register("environments", "list or create environments (server API)", runEnvironments)
	register("flags", "create, show, change and delete flags (server API)", runFlags)
	register("experiments", "create, start, stop and resize experiments (server API)", runExperiments)
	register("keys", "create, list and revoke SDK keys and admin tokens (server API)", runKeys)
	register("audit", "show the audit log (server API)", runAudit)
}

// adminFlags declares the connection flags every management command takes.
type adminFlags struct {
	fs     *flag.FlagSet
	server *string
	token  *string
	env    *string
	e      *env
}

func newAdminFlags(e *env, name, usage string) *adminFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	a := &adminFlags{fs: fs, e: e}
	a.server = fs.String("server", envOr(e, "ALLOT_SERVER", "http://127.0.0.1:8080"), "server base URL (ALLOT_SERVER)")
	// The default is read after parsing, never declared as the flag's
	// default: -h prints defaults, and a token must never be printed.
	a.token = fs.String("token", "", "admin token (default: from ALLOT_TOKEN)")
	a.env = fs.String("env", core.DefaultEnvironment, "environment")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return a
}

// parse parses args (flags may follow positional arguments) and returns
// the positional ones.
func (a *adminFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(a.fs, args); err != nil {
			return nil, err
		}
		args = a.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (a *adminFlags) client() (*apiclient.Client, error) {
	if *a.token == "" {
		*a.token = envOr(a.e, "ALLOT_TOKEN", "")
	}
	if *a.token == "" {
		return nil, &exitError{code: 2, err: errors.New("an admin token is required: --token or ALLOT_TOKEN")}
	}
	return apiclient.New(*a.server, *a.token), nil
}

// command parses the arguments of a command with subcommands and returns
// them (the subcommand first) and an API client.
func (a *adminFlags) command(args []string) ([]string, *apiclient.Client, error) {
	pos, err := a.parse(args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) == 0 {
		return nil, nil, usageErr(a)
	}
	c, err := a.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, c, nil
}

func usageErr(a *adminFlags) error {
	a.fs.Usage()
	return &exitError{code: 2}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printWarnings(e *env, s httpapi.SettingsResponse) {
	for _, w := range s.Warnings {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
}

// ---- environments

func runEnvironments(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "environments", "allot environments [list [--json] | create NAME]")
	asJSON := a.fs.Bool("json", false, "list: print JSON for scripts")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0 || pos[0] == "list":
		envs, err := c.Environments(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, envs)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tREVISION\tUPDATED")
		for _, env := range envs {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", env.Name, env.Revision, env.UpdatedAt.Format("2006-01-02 15:04:05"))
		}
		return tw.Flush()
	case pos[0] == "create" && len(pos) == 2:
		env, err := c.CreateEnvironment(ctx, pos[1])
		if err != nil {
			return err
		}
		return printJSON(e.stdout, env)
	}
	return usageErr(a)
}

// ---- flags

const flagsUsage = `allot flags <command> [flags]

  list [--json]                             list flags
  get KEY                                   show a flag and its settings in --env
  create KEY --type STRING --variation k=v ...   create a flag (off everywhere)
  create --file flag.json                   create a flag from its JSON
  delete KEY                                delete a flag everywhere
  enable KEY | disable KEY                  turn a flag on or off in --env
  rollout KEY --alloc NAME --variation V --percent P [--rules JSON]
  target KEY --alloc NAME --variation V --rules JSON
  remove KEY --alloc NAME                   remove an allocation in --env
  set KEY --file settings.json              replace the settings in --env
  preview KEY SUBJECT [--attr k=v ...]      what the server's engine assigns
  update KEY [--description D] [--tag T ...] [--owner O] [--variation k=v ...]
                                            change the definition (--file flag.json: replace it)
  archive KEY | restore KEY                 stop publishing a flag everywhere / publish it again
  copy KEY --from ENV --to ENV [--yes]      show what copying the settings changes; --yes copies
  move KEY --alloc NAME --position N        move an allocation in --env (0 is first)
  replace KEY --alloc NAME --file alloc.json   replace an allocation in --env`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func runFlags(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "flags", flagsUsage)
	typ := a.fs.String("type", "STRING", "variation type: STRING, INTEGER, NUMERIC, BOOLEAN, JSON")
	desc := a.fs.String("description", "", "flag description")
	file := a.fs.String("file", "", "JSON file (- for stdin)")
	alloc := a.fs.String("alloc", "", "allocation key")
	percent := a.fs.Float64("percent", 100, "rollout percentage")
	rules := a.fs.String("rules", "", `targeting rules as JSON, such as [{"conditions":[{"attribute":"country","operator":"ONE_OF","value":["US"]}]}]`)
	var vars, attrs multi
	a.fs.Var(&vars, "variation", "create: a variation key=value (repeatable); rollout, target: the variation key")
	a.fs.Var(&attrs, "attr", "subject attribute k=v for preview (repeatable)")
	asJSON := a.fs.Bool("json", false, "list, archive, restore, copy: print JSON for scripts (get always prints JSON)")
	life := lifeFlags(a)
	// --variation is a key for rollout/target, k=v pairs for create.
	pos, c, err := a.command(args)
	if err != nil {
		return err
	}
	sub, rest := pos[0], pos[1:]
	key := ""
	if len(rest) > 0 {
		key = rest[0]
	}
	switch sub {
	case "update", "archive", "restore", "copy", "move", "replace":
		if key == "" {
			return usageErr(a)
		}
		return runFlagLife(ctx, e, a, c, sub, key, life, *desc, *file, *alloc, vars, *asJSON)
	case "list":
		flags, err := c.Flags(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, flags)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tTYPE\tVARIATIONS\tVERSION\tSTATE\tTAGS\tOWNER\tDESCRIPTION")
		for _, f := range flags {
			keys := make([]string, len(f.Variations))
			for i, v := range f.Variations {
				keys[i] = v.Key
			}
			state := "live"
			if !f.Published() {
				state = "archived"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", f.Key, f.VariationType, strings.Join(keys, ","), f.Version, state,
				strings.Join(f.Tags, ","), f.Owner, f.Description)
		}
		return tw.Flush()
	case "get":
		if key == "" {
			return usageErr(a)
		}
		f, err := c.Flag(ctx, key)
		if err != nil {
			return err
		}
		s, err := c.Settings(ctx, *a.env, key)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, map[string]any{"flag": f, "settings": s.FlagSettings})
	case "create":
		var f core.Flag
		if *file != "" {
			if err := readJSONFile(e, *file, &f); err != nil {
				return err
			}
		} else {
			if key == "" {
				return usageErr(a)
			}
			f = core.Flag{Key: key, Description: *desc, VariationType: ufc.VariationType(strings.ToUpper(*typ))}
			for _, p := range vars {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return &exitError{code: 2, err: fmt.Errorf("--variation %q: want key=value", p)}
				}
				f.Variations = append(f.Variations, core.Variation{Key: k, Value: variationValue(f.VariationType, v)})
			}
		}
		out, err := c.CreateFlag(ctx, f)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	case "delete":
		if key == "" {
			return usageErr(a)
		}
		f, err := c.Flag(ctx, key)
		if err != nil {
			return err
		}
		return c.DeleteFlag(ctx, key, f.Version)
	case "enable", "disable", "rollout", "target", "remove", "set":
		if key == "" {
			return usageErr(a)
		}
		s, err := c.Settings(ctx, *a.env, key)
		if err != nil {
			return err
		}
		var out httpapi.SettingsResponse
		switch sub {
		case "enable", "disable":
			s.Enabled = sub == "enable"
			out, err = c.PutSettings(ctx, s.FlagSettings)
		case "set":
			var next core.FlagSettings
			if *file == "" {
				return usageErr(a)
			}
			if err := readJSONFile(e, *file, &next); err != nil {
				return err
			}
			next.Flag, next.Environment, next.Version = key, *a.env, s.Version
			out, err = c.PutSettings(ctx, next)
		case "remove":
			out, err = c.DeleteAllocation(ctx, *a.env, key, *alloc, s.Version)
		default:
			al := core.Allocation{Key: *alloc, Type: core.Targeted}
			if len(vars) > 0 {
				al.Variation = vars[len(vars)-1]
			}
			if sub == "rollout" {
				al.Type = core.Rollout
				if al.Percent, err = percentOf("--percent", *percent); err != nil {
					return err
				}
			}
			if *rules != "" {
				if err := json.Unmarshal([]byte(*rules), &al.Rules); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--rules: %v", err)}
				}
			}
			out, err = c.AddAllocation(ctx, *a.env, key, s.Version, al)
		}
		if err != nil {
			return err
		}
		printWarnings(e, out)
		return printJSON(e.stdout, out.FlagSettings)
	case "preview":
		if len(rest) != 2 {
			return usageErr(a)
		}
		req := httpapi.EvaluateRequest{Flag: rest[0], Subject: rest[1], Attributes: map[string]any{}}
		for _, kv := range attrs {
			k, v, _ := strings.Cut(kv, "=")
			var x any
			if json.Unmarshal([]byte(v), &x) != nil {
				x = v
			}
			req.Attributes[k] = x
		}
		res, err := c.Evaluate(ctx, *a.env, req)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, res)
	}
	return usageErr(a)
}

// variationValue reads a command-line value: literally for STRING flags,
// as JSON otherwise.
func variationValue(t ufc.VariationType, v string) json.RawMessage {
	if t == ufc.TypeString || !json.Valid([]byte(v)) {
		b, _ := json.Marshal(v)
		return b
	}
	return json.RawMessage(v)
}

func percentOf(name string, p float64) (core.Percent, error) {
	var out core.Percent
	out.UnmarshalJSON([]byte(strconv.FormatFloat(p, 'f', -1, 64)))
	if out < 0 {
		return 0, &exitError{code: 2, err: fmt.Errorf("%s: %v is not a percentage from 0 to 100 with at most two decimals", name, p)}
	}
	return out, nil
}

func readJSONFile(e *env, path string, v any) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// ---- experiments

const experimentsUsage = `allot experiments <command> FLAG EXPERIMENT [flags]

  create FLAG EXP --traffic 10 --weight control=50 --weight treatment=50 [--rules JSON] [--start]
         [--layer NAME --layer-share 25]   in a layer, taking 25 % of it (no subject shared with its other experiments)
  layer FLAG EXP --layer NAME --layer-share N [--rerandomize]
                                  join a layer or grow/shrink the part of it; a running experiment joins
                                  only with --rerandomize (its subjects outside its part leave it)
  leave-layer FLAG EXP            take the experiment out of its layer
  start FLAG EXP                  set status running (it starts assigning)
  stop FLAG EXP                   set status stopped (it assigns no one)
  traffic FLAG EXP PERCENT        change the traffic; raising it never moves anyone
  weights FLAG EXP k=w ...        change the weights: this RE-RANDOMIZES the experiment
  list [FLAG] [--json]            the experiments of the environment (of one flag)
  summary FLAG EXP [--json]       assignments per variation and the sample ratio mismatch verdict
  history FLAG EXP [--json]       its changes (start, stop, traffic, weights...), oldest first, from the audit log`

func runExperiments(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "experiments", experimentsUsage)
	traffic := a.fs.Float64("traffic", 100, "percentage of subjects in the experiment")
	var weights multi
	a.fs.Var(&weights, "weight", "variation=percent (repeatable; must sum to 100)")
	rules := a.fs.String("rules", "", "targeting rules as JSON")
	startNow := a.fs.Bool("start", false, "create it running rather than draft")
	layer := a.fs.String("layer", "", "layer the experiment is in")
	layerShare := a.fs.Float64("layer-share", 0, "percentage of the layer the experiment takes")
	rerandomize := a.fs.Bool("rerandomize", false, "let a running experiment join a layer: its subjects outside its part leave it")
	asJSON := a.fs.Bool("json", false, "list, summary, history: print JSON for scripts")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 && (pos[0] == "list" && len(pos) <= 2 || (pos[0] == "summary" || pos[0] == "history") && len(pos) == 3) {
		c, err := a.client()
		if err != nil {
			return err
		}
		if pos[0] == "history" {
			return experimentHistory(ctx, e, c, *a.env, pos[1], pos[2], *asJSON)
		}
		if pos[0] == "summary" {
			return summarizeExperiment(ctx, e, c, *a.env, pos[1], pos[2], *asJSON)
		}
		flagKey := ""
		if len(pos) == 2 {
			flagKey = pos[1]
		}
		return listExperiments(ctx, e, c, *a.env, flagKey, *asJSON)
	}
	if len(pos) < 3 {
		return usageErr(a)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sub, flagKey, exp := pos[0], pos[1], pos[2]
	parseWeights := func(list []string) ([]core.Weight, error) {
		var out []core.Weight
		for _, kv := range list {
			k, v, ok := strings.Cut(kv, "=")
			f, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				return nil, &exitError{code: 2, err: fmt.Errorf("weight %q: want variation=percent", kv)}
			}
			p, err := percentOf("weight "+k, f)
			if err != nil {
				return nil, err
			}
			out = append(out, core.Weight{Variation: k, Weight: p})
		}
		return out, nil
	}
	s, err := c.Settings(ctx, *a.env, flagKey)
	if err != nil {
		return err
	}
	var out httpapi.SettingsResponse
	switch sub {
	case "create":
		al := core.Allocation{Key: exp, Type: core.Experiment, Status: core.Draft}
		if *startNow {
			al.Status = core.Running
		}
		if al.Traffic, err = percentOf("--traffic", *traffic); err != nil {
			return err
		}
		if al.Weights, err = parseWeights(weights); err != nil {
			return err
		}
		if *rules != "" {
			if err := json.Unmarshal([]byte(*rules), &al.Rules); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--rules: %v", err)}
			}
		}
		if al.Layer, err = layerPart(*layer, *layerShare); err != nil {
			return err
		}
		out, err = c.AddAllocation(ctx, *a.env, flagKey, s.Version, al)
	case "layer":
		lp, lerr := layerPart(*layer, *layerShare)
		if lerr != nil {
			return lerr
		}
		if lp == nil {
			return usageErr(a)
		}
		lp.Rerandomize = *rerandomize
		out, err = c.PatchAllocation(ctx, *a.env, flagKey, exp, s.Version, httpapi.AllocationPatch{Layer: lp})
	case "leave-layer":
		out, err = c.PatchAllocation(ctx, *a.env, flagKey, exp, s.Version, httpapi.AllocationPatch{LeaveLayer: true})
	case "start", "stop":
		status := core.Running
		if sub == "stop" {
			status = core.Stopped
		}
		out, err = c.PatchAllocation(ctx, *a.env, flagKey, exp, s.Version, httpapi.AllocationPatch{Status: &status})
	case "traffic":
		if len(pos) != 4 {
			return usageErr(a)
		}
		f, perr := strconv.ParseFloat(pos[3], 64)
		if perr != nil {
			return usageErr(a)
		}
		p, perr := percentOf("traffic", f)
		if perr != nil {
			return perr
		}
		out, err = c.PatchAllocation(ctx, *a.env, flagKey, exp, s.Version, httpapi.AllocationPatch{Traffic: &p})
	case "weights":
		w, werr := parseWeights(pos[3:])
		if werr != nil {
			return werr
		}
		out, err = c.PatchAllocation(ctx, *a.env, flagKey, exp, s.Version, httpapi.AllocationPatch{Weights: &w})
	default:
		return usageErr(a)
	}
	if err != nil {
		return err
	}
	printWarnings(e, out)
	return printJSON(e.stdout, out.FlagSettings)
}

// layerPart is the --layer and --layer-share of an experiment (nil
// without --layer).
func layerPart(name string, share float64) (*core.LayerPart, error) {
	if name == "" {
		if share != 0 {
			return nil, &exitError{code: 2, err: errors.New("--layer-share needs --layer")}
		}
		return nil, nil
	}
	p, err := percentOf("--layer-share", share)
	if err != nil {
		return nil, err
	}
	return &core.LayerPart{Name: name, Share: p}, nil
}

// ---- keys

const keysUsage = `allot keys <command> [flags]

  list [--json]                 list SDK keys (server and client)
  create NAME [--env production]  create a server key (its secret is shown once)
  create NAME --client [--origin URL ...]
                                create a client key, for pages and apps: it
                                reads only the obfuscated CLIENT document and
                                posts assignment events, from the given web
                                origins (default: any)
  origins ID [--origin URL ...]  set the web origins a client key may be used
                                from (none: any)
  revoke ID                     revoke an SDK key
  admin-list [--json]           list admin tokens
  admin-create NAME [--role R]  create an API token of your account (shown
                                once), with your role or a narrower one
                                (--role viewer)
  admin-revoke ID               revoke an admin token`

func runKeys(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "keys", keysUsage)
	client := a.fs.Bool("client", false, "create: a client key (safe to embed in a page or app) rather than a server key")
	asJSON := a.fs.Bool("json", false, "list, admin-list: print JSON for scripts")
	role := a.fs.String("role", "", "admin-create: the token's role, no wider than yours (viewer, editor, admin; default: yours)")
	var origins []string
	a.fs.Func("origin", "create --client, origins: a web origin the key may be used from, such as https://www.example.com (repeatable; default: any)", func(v string) error {
		origins = append(origins, v)
		return nil
	})
	pos, c, err := a.command(args)
	if err != nil {
		return err
	}
	id := func() (int64, error) {
		if len(pos) != 2 {
			return 0, usageErr(a)
		}
		n, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return 0, usageErr(a)
		}
		return n, nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	revoked := func(k *core.SDKKey, t *core.AdminToken) string {
		if (k != nil && k.RevokedAt != nil) || (t != nil && t.RevokedAt != nil) {
			return "revoked"
		}
		return "live"
	}
	switch pos[0] {
	case "list":
		keys, err := c.SDKKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, keys)
		}
		fmt.Fprintln(tw, "ID\tNAME\tENVIRONMENT\tKIND\tPREFIX\tSTATE\tORIGINS")
		for _, k := range keys {
			o := strings.Join(k.Origins, ",")
			if k.Kind == core.KeyClient && o == "" {
				o = "any"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s…\t%s\t%s\n", k.ID, k.Name, k.Environment, k.Kind, k.Prefix, revoked(&k, nil), o)
		}
		return tw.Flush()
	case "admin-list":
		toks, err := c.AdminTokens(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, toks)
		}
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tACCOUNT\tROLE\tSTATE")
		for _, t := range toks {
			fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\n", t.ID, t.Name, t.Prefix, t.Email, t.Role, revoked(nil, &t))
		}
		return tw.Flush()
	case "create":
		if len(pos) != 2 {
			return usageErr(a)
		}
		if len(origins) > 0 && !*client {
			return &exitError{code: 2, err: errors.New("--origin is for client keys: add --client (a server key must never be used from a browser)")}
		}
		var k core.SDKKey
		if *client {
			k, err = c.CreateClientKey(ctx, *a.env, pos[1], origins)
		} else {
			k, err = c.CreateSDKKey(ctx, *a.env, pos[1])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "%s key %d for %s (shown once):\n", k.Kind, k.ID, k.Environment)
		fmt.Fprintln(e.stdout, k.Secret)
		return nil
	case "admin-create":
		if len(pos) != 2 {
			return usageErr(a)
		}
		t, err := c.CreateToken(ctx, pos[1], core.Role(*role))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "API token %d, role %s (shown once):\n", t.ID, t.Role)
		fmt.Fprintln(e.stdout, t.Secret)
		return nil
	case "origins":
		n, err := id()
		if err != nil {
			return err
		}
		k, err := c.SetKeyOrigins(ctx, n, origins)
		if err != nil {
			return err
		}
		if len(k.Origins) == 0 {
			fmt.Fprintf(e.stdout, "client key %d (%s…) may be used from any origin\n", k.ID, k.Prefix)
		} else {
			fmt.Fprintf(e.stdout, "client key %d (%s…) may be used from %s\n", k.ID, k.Prefix, strings.Join(k.Origins, ", "))
		}
		return nil
	case "revoke":
		n, err := id()
		if err != nil {
			return err
		}
		return c.RevokeSDKKey(ctx, n)
	case "admin-revoke":
		n, err := id()
		if err != nil {
			return err
		}
		return c.RevokeAdminToken(ctx, n)
	}
	return usageErr(a)
}

// ---- audit

func runAudit(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "audit", "allot audit [--limit 20] [--before ID] [--json]")
	limit := a.fs.Int("limit", 20, "entries to show")
	before := a.fs.Int64("before", 0, "show entries older than this id")
	asJSON := a.fs.Bool("json", false, "print JSON for scripts")
	if _, err := a.parse(args); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	entries, err := c.Audit(ctx, *limit, *before)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, entries)
	}
	for _, en := range entries {
		where := ""
		if en.Environment != "" {
			where = " in " + en.Environment
		}
		fmt.Fprintf(e.stdout, "#%d %s %s %s %s %s%s\n", en.ID, en.At.Format("2006-01-02T15:04:05Z"), en.Actor, en.Action, en.Entity, en.Key, where)
		if en.Before != nil {
			fmt.Fprintf(e.stdout, "    before: %s\n", en.Before)
		}
		if en.After != nil {
			fmt.Fprintf(e.stdout, "    after:  %s\n", en.After)
		}
	}
	return nil
}
