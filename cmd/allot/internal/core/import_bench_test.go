package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// bigDocument is flags-v1.json's 20 valid flags copied under new keys
// until the document has n flags.
func bigDocument(b *testing.B, n int) []byte {
	var doc map[string]any
	if err := json.Unmarshal(ufctest.Document(b, "flags-v1.json"), &doc); err != nil {
		b.Fatal(err)
	}
	src := doc["flags"].(map[string]any)
	delete(src, "invalid-value-flag")
	delete(src, "start-and-end-date-test")
	flags := map[string]any{}
	for i := 0; len(flags) < n; i++ {
		for k, f := range src {
			if len(flags) == n {
				break
			}
			key := fmt.Sprintf("%s-%d", k, i)
			c := map[string]any{}
			for fk, fv := range f.(map[string]any) {
				c[fk] = fv
			}
			c["key"] = key
			flags[key] = c
		}
	}
	doc["flags"] = flags
	out, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkImport measures an import of n flags into a fresh SQLite store
// (one transaction: every flag created, validated by the engine, audited)
// beside its floor, the engine reading and judging the same document
// (ufc.Parse and eval.CheckPublishable). The ratio between sizes shows the
// cost is linear in the flags.
func BenchmarkImport(b *testing.B) {
	for _, n := range []int{500, core.MaxImportFlags} {
		doc := bigDocument(b, n)
		b.Run(fmt.Sprintf("floor-parse-check/flags=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := ufc.Parse(doc)
				if err != nil {
					b.Fatal(err)
				}
				if err := eval.CheckPublishable(d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("import/flags=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := core.New(storetest.Open(b, "sqlite"), core.Options{})
				b.StartTimer()
				rep, err := c.Import(context.Background(), core.ImportRequest{Environment: core.DefaultEnvironment, Document: doc})
				if err != nil || len(rep.Created) != n {
					b.Fatalf("%v: %d created, %d refused", err, len(rep.Created), len(rep.Refused))
				}
			}
		})
	}
}
