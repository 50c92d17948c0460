package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestImportFixtures is issue 13's import proof: Eppo's flags-v1.json is
// imported into a real server (SQLite and PostgreSQL), the Go SDK reads the
// SERVER document the server publishes, and every one of the 225 fixture
// checks gets the fixture's value. The published flags keep the
// document's salts, ranges and extraLogging exactly. Two flags are faulty
// on purpose: a plain import refuses them with the reason, --keep-faults
// keeps them as they are. The obfuscated twin, imported with the names
// that resolve its hashes, gives the same flags; a dry run and a second
// import change nothing.
func TestImportFixtures(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			testImportFixtures(t, storetest.DSN(t, d))
		})
	}
}

func testImportFixtures(t *testing.T, dsn string) {
	srv := startServer(t, dsn)
	defer stopServer(t, srv)
	ctx := context.Background()
	admin := apiclient.New(srv.URL(), adminToken)
	server := ufctest.Document(t, "flags-v1.json")

	// A dry run reports and changes nothing.
	dry, err := admin.Import(ctx, core.DefaultEnvironment, server, apiclient.ImportOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if fs, err := admin.Flags(ctx); err != nil || len(fs) != 0 {
		t.Fatalf("after a dry run: %d flags, %v", len(fs), err)
	}
	// Two of Eppo's 22 flags are faulty on purpose, and the engine refuses
	// them: a variation value that is not an INTEGER, and a split to a
	// variation the flag does not have.
	faulty := map[string]string{"invalid-value-flag": "variations[1].value", "start-and-end-date-test": "allocations[1].splits[0].variation"}
	if !dry.DryRun || dry.Format != ufc.FormatServer || len(dry.Created) != 20 || len(dry.Refused) != 2 {
		t.Errorf("dry run: %+v", dry)
	}
	for _, r := range dry.Refused {
		if faulty[r.Flag] != r.Field || !strings.Contains(r.Reason, "--keep-faults") {
			t.Errorf("refusal %+v", r)
		}
	}
	rep, err := admin.Import(ctx, core.DefaultEnvironment, server, apiclient.ImportOptions{KeepFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 22 || len(rep.Refused) != 0 || len(rep.Faults) != 2 {
		t.Errorf("report: %d created, refused %+v, faults %+v; want all 22, two with faults", len(rep.Created), rep.Refused, rep.Faults)
	}
	for _, f := range rep.Faults {
		if faulty[f.Flag] != f.Field {
			t.Errorf("fault kept: %+v", f)
		}
	}
	if !slices.Equal(dry.Created, slices.DeleteFunc(slices.Clone(rep.Created), func(k string) bool { return faulty[k] != "" })) {
		t.Errorf("dry run created %v, the import %v", dry.Created, rep.Created)
	}

	// The published SERVER document keeps the document's allocations.
	key, err := admin.CreateSDKKey(ctx, core.DefaultEnvironment, "fixtures")
	if err != nil {
		t.Fatal(err)
	}
	published := fetchConfig(t, srv.URL()+"/api/flag-config/v1/config?apiKey="+key.Secret)
	src, err := ufc.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range src.Flags {
		p := published.Flags[k]
		if p == nil {
			t.Errorf("flag %s is not published", k)
			continue
		}
		if splits(f) != splits(p) {
			t.Errorf("flag %s: published allocations differ:\n doc %s\n pub %s", k, splits(f), splits(p))
		}
	}

	// Every fixture check through the Go SDK on the published document.
	c, err := allot.Init(ctx, allot.Config{SDKKey: key.Secret, BaseURL: srv.URL() + "/api", DisableStreaming: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	checks, passed := 0, 0
	for _, fc := range ufctest.Cases(t) {
		for _, s := range fc.Subjects {
			checks++
			got := getTyped(t, c, fc.VariationType, fc.Flag, s.SubjectKey, s.SubjectAttributes, fc.DefaultValue)
			var want any
			_ = json.Unmarshal(s.Assignment, &want)
			if reflect.DeepEqual(got, want) {
				passed++
			} else {
				t.Errorf("%s %s: got %v, want %v", fc.Flag, s.SubjectKey, got, want)
			}
		}
	}
	if checks != ufctest.Checks || passed != checks {
		t.Errorf("%d of %d fixture checks pass; want all %d", passed, checks, ufctest.Checks)
	}

	// Again: nothing to do.
	again, err := admin.Import(ctx, core.DefaultEnvironment, server, apiclient.ImportOptions{KeepFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Unchanged) != len(rep.Created) || len(again.Created)+len(again.Updated) != 0 {
		t.Errorf("second import: %+v", again)
	}

	// The CLIENT twin, with the names that resolve its hashes, gives the
	// same flags in another environment; without names, every flag is
	// refused with the reason.
	if _, err := admin.CreateEnvironment(ctx, "client"); err != nil {
		t.Fatal(err)
	}
	client := ufctest.Document(t, "flags-v1-obfuscated.json")
	none, err := admin.Import(ctx, "client", client, apiclient.ImportOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if none.Format != ufc.FormatClient || len(none.Refused) != 22 || len(none.Created)+len(none.Updated)+len(none.Unchanged) != 0 {
		t.Errorf("CLIENT without names: %+v", none)
	}
	crep, err := admin.Import(ctx, "client", client, apiclient.ImportOptions{Names: ufctest.Names(t, server), KeepFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(crep.Refused) != 0 || len(crep.Faults) != 2 || len(crep.Updated)+len(crep.Unchanged) != 22 {
		t.Errorf("CLIENT import: %+v", crep)
	}
	for k := range src.Flags {
		a, err1 := admin.Settings(ctx, core.DefaultEnvironment, k)
		b, err2 := admin.Settings(ctx, "client", k)
		if err1 != nil || err2 != nil {
			t.Fatalf("settings of %s: %v, %v", k, err1, err2)
		}
		ja, _ := json.Marshal(a.Allocations)
		jb, _ := json.Marshal(b.Allocations)
		if string(ja) != string(jb) || a.Enabled != b.Enabled {
			t.Errorf("flag %s: SERVER import %s, CLIENT import %s", k, ja, jb)
		}
	}
}

// splits is a flag's allocations as JSON: keys, rules, dates, doLog,
// splits with salts, ranges and extraLogging.
func splits(f *ufc.Flag) string {
	type shard struct {
		Salt   string
		Ranges []ufc.Range
	}
	type split struct {
		V  string
		S  []shard
		EL map[string]string
	}
	type alloc struct {
		Key, Start, End string
		DoLog           bool
		Rules           int
		Splits          []split
	}
	var out []alloc
	for _, a := range f.Allocations {
		al := alloc{Key: a.Key, DoLog: a.DoLog, Rules: len(a.Rules)}
		for _, s := range a.Splits {
			sp := split{V: s.VariationKey, EL: s.ExtraLogging}
			for _, sh := range s.Shards {
				sp.S = append(sp.S, shard{sh.Salt, sh.Ranges})
			}
			al.Splits = append(al.Splits, sp)
		}
		out = append(out, al)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func fetchConfig(t *testing.T, url string) *ufc.Document {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("config: %d %v: %s", resp.StatusCode, err, body)
	}
	doc, err := ufc.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// getTyped calls the typed getter of typ with the fixture's default and
// returns the value as encoding/json would decode it.
func getTyped(t *testing.T, c *allot.Client, typ ufc.VariationType, flag, subject string, attrs map[string]any, def json.RawMessage) any {
	t.Helper()
	switch typ {
	case ufc.TypeString:
		var d string
		_ = json.Unmarshal(def, &d)
		return c.GetStringAssignment(flag, subject, attrs, d)
	case ufc.TypeInteger:
		var d int64
		_ = json.Unmarshal(def, &d)
		return float64(c.GetIntegerAssignment(flag, subject, attrs, d))
	case ufc.TypeNumeric:
		var d float64
		_ = json.Unmarshal(def, &d)
		return c.GetNumericAssignment(flag, subject, attrs, d)
	case ufc.TypeBoolean:
		var d bool
		_ = json.Unmarshal(def, &d)
		return c.GetBoolAssignment(flag, subject, attrs, d)
	case ufc.TypeJSON:
		var d any
		_ = json.Unmarshal(def, &d)
		return c.GetJSONAssignment(flag, subject, attrs, d)
	}
	t.Fatalf("unknown type %s", typ)
	return nil
}

// TestImportEndpoint: POST /api/v1/environments/{env}/import takes the
// document as the body (curl --data-binary @flags-v1.json), with dryRun and
// keepFaults in the query; it needs an admin token (a client or server SDK
// key gets 401), a body over the limit gets 413, an unreadable document 400
// naming the line and column, and none of them changes anything.
func TestImportEndpoint(t *testing.T) {
	srv := startServer(t, storetest.DSN(t, "sqlite"))
	defer stopServer(t, srv)
	ctx := context.Background()
	admin := apiclient.New(srv.URL(), adminToken)
	sdkKey, err := admin.CreateSDKKey(ctx, core.DefaultEnvironment, "srv")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, err := admin.CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := ufctest.Document(t, "flags-v1.json")
	post := func(query, bearer string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/api/v1/environments/production/import"+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, bearer := range []string{sdkKey.Secret, clientKey.Secret, ""} {
		if code, _ := post("", bearer, doc); code != http.StatusUnauthorized {
			t.Errorf("bearer %.12q: %d, want 401", bearer, code)
		}
	}
	report := func(body string) core.ImportReport {
		var r core.ImportReport
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("report %.200s: %v", body, err)
		}
		return r
	}
	if code, body := post("?dryRun=true&keepFaults=true", adminToken, doc); code != 200 || !report(body).DryRun || len(report(body).Faults) != 2 {
		t.Errorf("dry run: %d %.300s", code, body)
	}
	if code, body := post("", adminToken, make([]byte, core.MaxImportBytes+10)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d %.200s", code, body)
	}
	if code, body := post("", adminToken, []byte("{\n  \"flags\": {\"a\": }\n}")); code != 400 || !strings.Contains(body, "line 2") {
		t.Errorf("bad JSON: %d %s", code, body)
	}
	if code, body := post("?dryRun=maybe", adminToken, doc); code != 400 || !strings.Contains(body, "dryRun") {
		t.Errorf("bad dryRun: %d %s", code, body)
	}
	if fs, err := admin.Flags(ctx); err != nil || len(fs) != 0 {
		t.Fatalf("flags after refused imports: %d %v", len(fs), err)
	}
	if code, body := post("?keepFaults=1", adminToken, doc); code != 200 || len(report(body).Created) != 22 {
		t.Errorf("import: %d %.300s", code, body)
	}
}
