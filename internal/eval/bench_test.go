package eval_test

import (
	"crypto/md5"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// subjects returns n distinct 24-character subject keys.
func subjects(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%019d", i*7919)
	}
	return out
}

// experimentDoc has one experiment whose salts are 16 hex characters, the
// form Allot's server generates: salt + "-" + a 24-character subject key is
// 41 bytes, one MD5 block. longSaltDoc uses salts as long as the fixtures'
// ("traffic-<flag key>-..."), which push the hash input past 55 bytes and
// into a second MD5 block.
const experimentDoc = `{
  "createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "bench"},
  "flags": {"checkout-experiment": {
    "key": "checkout-experiment", "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {"control": {"key": "control", "value": "control"}, "treatment": {"key": "treatment", "value": "treatment"}},
    "allocations": [{"key": "experiment", "doLog": true, "splits": [
      {"variationKey": "control", "shards": [
        {"salt": "7f3a9c1e5b2d4f60", "ranges": [{"start": 0, "end": 8000}]},
        {"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 0, "end": 5000}]}]},
      {"variationKey": "treatment", "shards": [
        {"salt": "7f3a9c1e5b2d4f60", "ranges": [{"start": 0, "end": 8000}]},
        {"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 5000, "end": 10000}]}]}]}]}}}`

var longSaltDoc = strings.NewReplacer("7f3a9c1e5b2d4f60", "traffic-checkout-experiment-a1b2c3", "c4e8a2f6b0d9e1a7", "split-checkout-experiment-d4e5f6").Replace(experimentDoc)

var sink eval.Result

// BenchmarkExperiment: one experiment allocation with a traffic shard and a
// split shard, no rules (issue target: <= 250 ns/op, 0 allocs/op).
func BenchmarkExperiment(b *testing.B) { benchExperiment(b, experimentDoc) }

// BenchmarkExperimentLongSalt is the same with fixture-style long salts.
func BenchmarkExperimentLongSalt(b *testing.B) { benchExperiment(b, longSaltDoc) }

func benchExperiment(b *testing.B, doc string) {
	snap, err := eval.Load([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	subs := subjects(1024)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = snap.Evaluate("checkout-experiment", subs[i&1023], nil, ufc.TypeString, now)
		i++
	}
}

// BenchmarkNewUserOnboarding: the fixtures' new-user-onboarding flag (four
// allocations, regex and list rules, an experiment and a rollout), with a mix
// of attributes that reaches every allocation (target: <= 600 ns/op, 0 allocs).
func BenchmarkNewUserOnboarding(b *testing.B) {
	snap, err := eval.Load(ufctest.Document(b, "flags-v1.json"))
	if err != nil {
		b.Fatal(err)
	}
	subs := subjects(1024)
	attrs := []map[string]any{
		{"email": "someone@example.com", "country": "Germany"}, // experiment
		{"email": "someone@example.com", "country": "Mexico"},  // rollout
		{"email": "dev@mycompany.com", "country": "Canada"},    // internal users
		{"email": "x@example.com", "country": "US", "age": 40}, // rollout
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = snap.Evaluate("new-user-onboarding", subs[i&1023], attrs[i&3], ufc.TypeString, now)
		i++
	}
}

// BenchmarkUnknownFlag: a flag key the snapshot does not have (target: <= 30 ns/op).
func BenchmarkUnknownFlag(b *testing.B) {
	snap, err := eval.Load([]byte(experimentDoc))
	if err != nil {
		b.Fatal(err)
	}
	subs := subjects(1024)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = snap.Evaluate("no-such-flag-in-this-doc", subs[i&1023], nil, ufc.TypeString, now)
		i++
	}
}

// largeDoc builds a document of n flags, each with 2 variations and one
// allocation with a rule and a 2-way split.
func largeDoc(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"createdAt":"2026-01-01T00:00:00Z","format":"SERVER","environment":{"name":"bench"},"banditReferences":{},"flags":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		k := fmt.Sprintf("flag-%05d", i)
		fmt.Fprintf(&b, `"%s":{"key":"%s","enabled":true,"variationType":"STRING","totalShards":10000,`+
			`"variations":{"control":{"key":"control","value":"control"},"treatment":{"key":"treatment","value":"treatment"}},`+
			`"allocations":[{"key":"experiment","doLog":true,"rules":[{"conditions":[{"attribute":"country","operator":"ONE_OF","value":["US","CA","MX"]}]}],`+
			`"splits":[{"variationKey":"control","shards":[{"salt":"traffic-%s-7f3a","ranges":[{"start":0,"end":10000}]},{"salt":"split-%s-9c1e","ranges":[{"start":0,"end":5000}]}]},`+
			`{"variationKey":"treatment","shards":[{"salt":"traffic-%s-7f3a","ranges":[{"start":0,"end":10000}]},{"salt":"split-%s-9c1e","ranges":[{"start":5000,"end":10000}]}]}]}]}`,
			k, k, k, k, k, k)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// BenchmarkCompile10k: parse and compile a 10,000-flag document (target:
// <= 60 ms/op). It also reports the heap the compiled snapshot retains
// (target: <= 8 MiB) as retained-MiB.
func BenchmarkCompile10k(b *testing.B) {
	data := largeDoc(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		snap, err := eval.Load(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = snap
	}
	b.StopTimer()
	b.ReportMetric(float64(retained(data))/(1<<20), "retained-MiB")
}

// retained measures the live heap held by one compiled snapshot of data.
func retained(data []byte) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	snap, err := eval.Load(data)
	if err != nil {
		panic(err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(snap)
	return after.HeapAlloc - before.HeapAlloc
}

var sinkU uint32

// BenchmarkMD5Floor is the floor under BenchmarkExperiment: the two MD5
// digests that any UFC evaluation of that experiment must compute.
func BenchmarkMD5Floor(b *testing.B) {
	subs := subjects(1024)
	var buf [64]byte
	i := 0
	for b.Loop() {
		s := subs[i&1023]
		n := copy(buf[copy(buf[:], "7f3a9c1e5b2d4f60-"):], s) + 17
		x := md5.Sum(buf[:n])
		n = copy(buf[copy(buf[:], "c4e8a2f6b0d9e1a7-"):], s) + 17
		y := md5.Sum(buf[:n])
		sinkU += uint32(x[0]) + uint32(y[0])
		i++
	}
}
