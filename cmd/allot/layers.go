package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// allot layers and allot holdouts (issue 15): thin calls of the API; the
// core decides (docs/layers-and-holdouts.md).

func init() {
	register("layers", "create, show and list mutually exclusive layers (server API)", runLayers)
	register("holdouts", "create holdouts, add experiments to them, ship winners (server API)", runHoldouts)
}

const layersUsage = `allot layers <command> [flags]

  list                 list the layers of --env with their members' shares
  create NAME          create an empty layer
  show NAME            show a layer's ranges: who owns which part, what is free
  delete NAME          delete a layer with no experiments

Experiments join a layer with: allot experiments create FLAG EXP ... --layer NAME --layer-share N
(or allot experiments layer FLAG EXP --layer NAME --layer-share N), and leave with
allot experiments leave-layer FLAG EXP.`

func runLayers(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "layers", layersUsage)
	asJSON := a.fs.Bool("json", false, "print JSON")
	pos, c, err := a.command(args)
	if err != nil {
		return err
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		ls, err := c.Layers(ctx, *a.env)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, ls)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LAYER\tEXPERIMENTS\tFREE")
		for _, l := range ls {
			var ms []string
			for _, m := range l.Members {
				ms = append(ms, fmt.Sprintf("%s/%s %s", m.Flag, m.Allocation, pctText(rangeTotal(m.Ranges))))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, strings.Join(ms, ", "), pctText(rangeTotal(l.Free)))
		}
		return tw.Flush()
	case pos[0] == "create" && len(pos) == 2:
		l, err := c.CreateLayer(ctx, *a.env, pos[1])
		if err != nil {
			return err
		}
		return printJSON(e.stdout, l)
	case pos[0] == "show" && len(pos) == 2:
		l, err := c.Layer(ctx, *a.env, pos[1])
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, l)
		}
		printLayer(e, l)
		return nil
	case pos[0] == "delete" && len(pos) == 2:
		return c.DeleteLayer(ctx, *a.env, pos[1])
	}
	return usageErr(a)
}

// printLayer draws the layer as a bar of 50 cells (2 % each, labelled by
// member) and lists each member's ranges.
func printLayer(e *env, l core.Layer) {
	const cells = 50
	bar := []byte(strings.Repeat(".", cells))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(e.stdout, "layer %s in %s (salt %s)\n", l.Name, l.Environment, l.Salt)
	fmt.Fprintln(tw, "\tEXPERIMENT\tSHARE\tRANGES (of 10000)")
	for i, m := range l.Members {
		mark := byte('A' + i%26)
		for _, r := range m.Ranges {
			for j := r.Start * cells / core.Whole; j < (r.End*cells+core.Whole-1)/core.Whole && j < cells; j++ {
				bar[j] = mark
			}
		}
		fmt.Fprintf(tw, "%c\t%s/%s\t%s\t%s\n", mark, m.Flag, m.Allocation, pctText(rangeTotal(m.Ranges)), rangeText(m.Ranges))
	}
	fmt.Fprintf(tw, ".\tfree\t%s\t%s\n", pctText(rangeTotal(l.Free)), rangeText(l.Free))
	fmt.Fprintf(e.stdout, "[%s]\n", bar)
	tw.Flush()
}

func rangeTotal(rs []core.Range) int {
	n := 0
	for _, r := range rs {
		n += r.End - r.Start
	}
	return n
}

func rangeText(rs []core.Range) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("[%d, %d)", r.Start, r.End))
	}
	return strings.Join(s, " ")
}

func pctText(bp int) string {
	return strconv.FormatFloat(float64(bp)/100, 'f', -1, 64) + " %"
}

const holdoutsUsage = `allot holdouts <command> [flags]

  list                               list the holdouts of --env and their experiments
  create KEY --percent 10 [--global] create a holdout of 10 % of subjects; --global: it covers every
                                     experiment created in --env from now on
  add-flag KEY FLAG [EXP] [--status-quo VARIATION]
                                     put a flag's experiment (not yet running) in the holdout;
                                     the status quo defaults to its first weighted variation
  ship KEY FLAG [EXP] --winner VARIATION
                                     the holdout's all-shipped half gets the winner
  remove-flag KEY FLAG [EXP] [--confirm]
                                     take a flag's experiment out of the holdout; when it runs or
                                     shipped, its held-out subjects move: --confirm accepts that`

func runHoldouts(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "holdouts", holdoutsUsage)
	percent := a.fs.Float64("percent", 0, "percentage of subjects held out")
	statusQuo := a.fs.String("status-quo", "", "variation the holdout keeps")
	winner := a.fs.String("winner", "", "variation shipped")
	global := a.fs.Bool("global", false, "cover every experiment created in --env from now on")
	confirm := a.fs.Bool("confirm", false, "remove-flag: accept that the holdout's subjects of the flag move")
	pos, c, err := a.command(args)
	if err != nil {
		return err
	}
	exp := func() string {
		if len(pos) == 4 {
			return pos[3]
		}
		return ""
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		hs, err := c.Holdouts(ctx, *a.env)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, hs)
	case pos[0] == "create" && len(pos) == 2:
		p, err := percentOf("--percent", *percent)
		if err != nil {
			return err
		}
		h, err := c.CreateHoldout(ctx, *a.env, pos[1], p, *global)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, h)
	case pos[0] == "add-flag" && (len(pos) == 3 || len(pos) == 4):
		out, err := c.AddHoldoutFlag(ctx, *a.env, pos[1], httpapi.HoldoutFlagRequest{Flag: pos[2], Allocation: exp(), StatusQuo: *statusQuo})
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	case pos[0] == "ship" && (len(pos) == 3 || len(pos) == 4):
		if *winner == "" {
			return usageErr(a)
		}
		out, err := c.ShipHoldout(ctx, *a.env, pos[1], httpapi.HoldoutFlagRequest{Flag: pos[2], Allocation: exp(), Winner: *winner})
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	case pos[0] == "remove-flag" && (len(pos) == 3 || len(pos) == 4):
		out, err := c.RemoveHoldoutFlag(ctx, *a.env, pos[1], pos[2], exp(), *confirm)
		if err != nil {
			return err
		}
		return printJSON(e.stdout, out)
	}
	return usageErr(a)
}
