// Command bench compares the assignment cost of Allot's Go SDK with
// LaunchDarkly's and GrowthBook's Go server SDKs on the same scenarios and
// subjects, and prints ns/op, allocs/op and the ratio to Allot.
//
//	cd bench && go run . [-benchtime 1s] [-count 3]
//
// With -count above 1 the SDKs take turns (allot, launchdarkly, growthbook,
// allot, ...) so that a burst of load from elsewhere on the machine hits
// them alike, and the fastest run of each is shown: on a shared machine
// interference only ever adds time.
package main

import (
	"cmp"
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
	count := flag.Int("count", 1, "runs per benchmark, taken in turns (the fastest is shown)")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	fmt.Printf("%s, %s/%s, %d CPUs (GOMAXPROCS %d), benchtime %v, best of %d\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), *benchtime, *count)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tmode\tSDK\tns/op\tallocs/op\tB/op\tvs Allot\t")
	for _, sc := range Scenarios {
		for _, mode := range []struct {
			name              string
			logging, parallel bool
		}{{"eval", false, false}, {"logging", true, false}, {"logging-parallel", true, true}} {
			runs := make([][]testing.BenchmarkResult, len(SDKs))
			for range *count {
				for i, sdk := range SDKs {
					runs[i] = append(runs[i], testing.Benchmark(func(b *testing.B) { Run(b, sdk, sc, mode.logging, mode.parallel) }))
				}
			}
			var base float64
			for i, sdk := range SDKs {
				r := slices.MinFunc(runs[i], func(a, b testing.BenchmarkResult) int {
					return cmp.Compare(nsPerOp(a), nsPerOp(b))
				})
				ns := nsPerOp(r)
				if sdk.Name == "allot" {
					base = ns
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%d\t%d\t%.2fx\t\n", sc.Name, mode.name, sdk.Name, ns, r.AllocsPerOp(), r.AllocedBytesPerOp(), ns/base)
			}
		}
	}
	w.Flush()
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(r.N)
}
