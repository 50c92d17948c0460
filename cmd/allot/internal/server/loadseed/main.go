// Command loadseed fills a running server with flags for load tests
// (BENCHMARKS.md, "Server") and prints an SDK key for the environment:
//
//	go run ./internal/server/loadseed -server http://127.0.0.1:8080 -token $ALLOT_ADMIN_TOKEN -flags 1000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "server base URL")
	token := flag.String("token", "", "admin token")
	n := flag.Int("flags", 1000, "flags to create")
	env := flag.String("env", "production", "environment")
	flag.Parse()
	ctx := context.Background()
	c := apiclient.New(*server, *token)
	rule := []core.Rule{{Conditions: []core.Condition{
		{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["US","CA","FR"]`)},
		{Attribute: "version", Operator: "GTE", Value: json.RawMessage(`"2.1.0"`)},
	}}}
	for i := range *n {
		key := fmt.Sprintf("load-%04d", i)
		_, err := c.CreateFlag(ctx, core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"control"`)},
			{Key: "treatment", Value: json.RawMessage(`"treatment"`)},
		}})
		if err != nil {
			log.Fatal(err)
		}
		var a core.Allocation
		switch i % 3 {
		case 0:
			a = core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 2000, Rules: rule,
				Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
		case 1:
			a = core.Allocation{Key: "ramp", Type: core.Rollout, Percent: 2500, Variation: "treatment"}
		default:
			a = core.Allocation{Key: "beta", Type: core.Targeted, Variation: "treatment", Rules: rule}
		}
		if _, err := c.PutSettings(ctx, core.FlagSettings{Flag: key, Environment: *env, Enabled: true, Allocations: []core.Allocation{a}}); err != nil {
			log.Fatal(err)
		}
	}
	k, err := c.CreateSDKKey(ctx, *env, "load")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Secret)
}
