// Command bench compares the assignment cost of Allot's Go SDK with
// LaunchDarkly's and GrowthBook's Go server SDKs on the same scenarios and
// subjects, and prints ns/op, allocs/op and the ratio to Allot.
//
//	cd bench && go run . [-benchtime 1s] [-count 3]
//
// With -count above 1 the median of the runs is shown.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"text/tabwriter"
	"time"
)

func main() {
	testing.Init()
	benchtime := flag.Duration("benchtime", time.Second, "time per benchmark")
	count := flag.Int("count", 1, "runs per benchmark (the median is shown)")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	fmt.Printf("%s, %s/%s, %d CPUs (GOMAXPROCS %d), benchtime %v, median of %d\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), *benchtime, *count)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tmode\tSDK\tns/op\tallocs/op\tB/op\tvs Allot\t")
	for _, sc := range Scenarios {
		for _, mode := range []struct {
			name              string
			logging, parallel bool
		}{{"eval", false, false}, {"logging", true, false}, {"logging-parallel", true, true}} {
			var base float64
			for _, sdk := range SDKs {
				var runs []testing.BenchmarkResult
				for range *count {
					runs = append(runs, testing.Benchmark(func(b *testing.B) { Run(b, sdk, sc, mode.logging, mode.parallel) }))
				}
				slices.SortFunc(runs, func(a, b testing.BenchmarkResult) int { return int(a.NsPerOp() - b.NsPerOp()) })
				r := runs[len(runs)/2]
				ns := float64(r.T.Nanoseconds()) / float64(r.N)
				if sdk.Name == "allot" {
					base = ns
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%d\t%d\t%.2fx\t\n", sc.Name, mode.name, sdk.Name, ns, r.AllocsPerOp(), r.AllocedBytesPerOp(), ns/base)
			}
		}
	}
	w.Flush()
}
