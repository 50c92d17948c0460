package allottest_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/allottest"
	"github.com/allot-dev/allot/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestValues(t *testing.T) {
	flags := allottest.NewFlags().
		Set("checkout", "treatment").
		SetFor("checkout", "control", "alice", "bob").
		Set("dark-mode", true).
		Set("max-items", 25).
		Set("discount", 0.15).
		Set("layout", map[string]any{"columns": 3, "theme": "dense"}).
		SetFor("only-some", "on", "carol")
	c, _ := allottest.NewClient(t, flags)

	if v := c.GetStringAssignment("checkout", "zoe", nil, "default"); v != "treatment" {
		t.Errorf("zoe: %q", v)
	}
	if v := c.GetStringAssignment("checkout", "alice", nil, "default"); v != "control" {
		t.Errorf("alice: %q", v)
	}
	if v, ok := c.GetAssignment("checkout", "bob", nil); !ok || v != "control" {
		t.Errorf("GetAssignment bob: %q %v", v, ok)
	}
	if !c.GetBoolAssignment("dark-mode", "zoe", nil, false) {
		t.Errorf("bool")
	}
	if v := c.GetIntegerAssignment("max-items", "zoe", nil, 0); v != 25 {
		t.Errorf("integer %d", v)
	}
	if v := c.GetNumericAssignment("discount", "zoe", nil, 0); v != 0.15 {
		t.Errorf("numeric %v", v)
	}
	want := map[string]any{"columns": float64(3), "theme": "dense"}
	if v := c.GetJSONAssignment("layout", "zoe", nil, nil); !reflect.DeepEqual(v, want) {
		t.Errorf("json %#v", v)
	}
	if v := c.GetStringAssignment("only-some", "carol", nil, "off"); v != "on" {
		t.Errorf("carol %q", v)
	}
	if v, d := c.GetStringAssignmentDetails("only-some", "dave", nil, "off"); v != "off" || d.Code != allot.CodeDefaultAllocationNull {
		t.Errorf("dave %q %+v", v, d)
	}
	if v := c.GetStringAssignment("unknown", "zoe", nil, "default"); v != "default" {
		t.Errorf("unknown flag %q", v)
	}
	if v := c.GetIntegerAssignment("checkout", "zoe", nil, 7); v != 7 {
		t.Errorf("wrong type %d", v)
	}
}

func TestApplyAndEvents(t *testing.T) {
	flags := allottest.NewFlags().Set("banner", "blue")
	c, rec := allottest.NewClient(t, flags)
	c.GetStringAssignment("banner", "alice", allot.Attributes{"plan": "pro"}, "none")
	c.GetStringAssignment("banner", "alice", nil, "none")

	flags.Disable("banner")
	if err := flags.Apply(c); err != nil {
		t.Fatal(err)
	}
	if v := c.GetStringAssignment("banner", "alice", nil, "none"); v != "none" {
		t.Errorf("disabled: %q", v)
	}
	flags.Enable("banner").SetFor("banner", "red", "alice")
	if err := flags.Apply(c); err != nil {
		t.Fatal(err)
	}
	if v := c.GetStringAssignment("banner", "alice", nil, "none"); v != "red" {
		t.Errorf("override: %q", v)
	}
	flags.SetFor("banner", "green", "alice")
	_ = flags.Apply(c)
	if v := c.GetStringAssignment("banner", "alice", nil, "none"); v != "green" {
		t.Errorf("later override: %q", v)
	}
	flags.Delete("banner")
	_ = flags.Apply(c)
	if v := c.GetStringAssignment("banner", "alice", nil, "none"); v != "none" {
		t.Errorf("deleted: %q", v)
	}

	events := rec.Events()
	var got []string
	for _, e := range events {
		got = append(got, e.FeatureFlag+"/"+e.Subject+"="+e.Variation)
	}
	if want := []string{"banner/alice=blue", "banner/alice=blue", "banner/alice=red", "banner/alice=green"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if events[0].SubjectAttributes["plan"] != "pro" {
		t.Errorf("attributes %v", events[0].SubjectAttributes)
	}
	rec.Reset()
	if n := len(rec.Events()); n != 0 {
		t.Errorf("%d events after Reset", n)
	}
}

func TestTypeMisuse(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("no panic for a value of another type")
		}
	}()
	allottest.NewFlags().Set("f", "a").Set("f", 1)
}

// Code under test takes the client; the test gives it one from allottest.
func checkoutPage(c *allot.Client, user string) string {
	if v, ok := c.GetAssignment("checkout-experiment", user, nil); ok && v == "treatment" {
		return "one-page checkout"
	}
	return "classic checkout"
}

// A test hands the code under test a client from allottest.
func ExampleNewClient() {
	var t *testing.T // the test's own *testing.T, in a real test
	flags := allottest.NewFlags().
		Set("checkout-experiment", "treatment").
		SetFor("checkout-experiment", "control", "user-42")
	client, rec := allottest.NewClient(t, flags)

	if got := checkoutPage(client, "user-42"); got != "classic checkout" {
		t.Errorf("user-42 sees %q", got)
	}
	if n := len(rec.Events()); n != 1 {
		t.Errorf("%d assignment events, want 1", n)
	}
}

// Flags.Document feeds any client, or a fake server.
func ExampleFlags_Document() {
	ctx := context.Background()
	flags := allottest.NewFlags().
		Set("checkout-experiment", "treatment").
		SetFor("checkout-experiment", "control", "user-42")
	client, err := allot.NewClient(ctx, allot.Config{Offline: true, InitialConfiguration: flags.Document()})
	if err != nil {
		panic(err)
	}
	defer client.Close(ctx)

	fmt.Println(checkoutPage(client, "user-7"))
	fmt.Println(checkoutPage(client, "user-42"))
	// Output:
	// one-page checkout
	// classic checkout
}
