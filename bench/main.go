// Command bench compares the assignment cost of Allot's Go SDK with
// LaunchDarkly's and GrowthBook's Go server SDKs on the same scenarios and
// subjects, and prints ns/op, allocs/op and the ratio to Allot.
//
//	cd bench && go run . [-benchtime 1s] [-count 3]
//	cd bench && go run . -lossless [-subjects 1000000] [-count 3] [-only rollout/serial]
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
	lossless := flag.Bool("lossless", false, "the lossless mode: distinct subjects, every event delivered (see lossless.go)")
	subjects := flag.Int("subjects", 1_000_000, "distinct subjects in the lossless mode")
	only := flag.String("only", "", "in the lossless mode, run only this scenario/mode (rollout/serial, targeted/parallel...)")
	sdkName := flag.String("sdk", "", "in the lossless mode, run only this SDK")
	flag.Parse()
	if *lossless {
		if *sdkName != "" {
			LosslessSDKs = slices.DeleteFunc(LosslessSDKs, func(s LosslessSDK) bool { return s.Name != *sdkName })
		}
		runLossless(*subjects, *count, *only)
		return
	}
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

// runLossless prints the lossless mode's table: per assignment, the time
// until every event is delivered, the allocations (the SDK's goroutines and
// the sink's included), and the events expected, delivered and dropped
// (the worst of the runs).
func runLossless(n, count int, only string) {
	fmt.Printf("lossless: %d distinct subjects, each assigned once; %s, %s/%s, %d CPUs (GOMAXPROCS %d), best of %d\n\n",
		n, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), count)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tmode\tSDK\tns/assign\tallocs/assign\tB/assign\texpected\tdelivered\tdropped\tvs Allot\t")
	for _, sc := range Scenarios {
		for _, parallel := range []bool{false, true} {
			mode := map[bool]string{false: "serial", true: "parallel"}[parallel]
			if only != "" && only != sc.Name+"/"+mode {
				continue
			}
			runs := make([][]LosslessResult, len(LosslessSDKs))
			for range count {
				for i, sdk := range LosslessSDKs {
					runs[i] = append(runs[i], RunLossless(sdk, sc, n, parallel))
				}
			}
			var base float64
			for i, sdk := range LosslessSDKs {
				best := slices.MinFunc(runs[i], func(a, b LosslessResult) int { return cmp.Compare(a.NsPerAssign, b.NsPerAssign) })
				delivered, dropped := best.Delivered, best.Dropped
				for _, r := range runs[i] {
					delivered, dropped = min(delivered, r.Delivered), max(dropped, r.Dropped)
				}
				if sdk.Name == "allot" {
					base = best.NsPerAssign
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%.3f\t%.0f\t%d\t%d\t%d\t%.2fx\t\n", sc.Name, mode, sdk.Name,
					best.NsPerAssign, best.AllocsPerAssign, best.BytesPerAssign, best.Expected, delivered, dropped, best.NsPerAssign/base)
			}
			w.Flush()
		}
	}
}
