package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/servetest"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// A 200 from ingestion means durable (docs/api.md): events acknowledged
// before `allot serve` is killed with SIGKILL, mid-stream, are all in the
// table after a restart, once each. A real process, a real kill, on SQLite
// (synchronous=FULL for the writer's commits) and on PostgreSQL.
func TestAcknowledgedEventsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the allot binary")
	}
	bin := servetest.Build(t, "..") // the server module's main package
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			dsn := storetest.DSN(t, dialect)
			const token = "allot_admin_kill9-test-0123456789abcdef"
			srv := servetest.Serve(t, bin, token, "--db", dsn)
			api := apiclient.New(srv.URL, token)
			ctx := context.Background()
			key, err := api.CreateSDKKey(ctx, "production", "kill9")
			if err != nil {
				t.Fatal(err)
			}

			// Four senders post batches of 200 events until the server
			// dies; each remembers the ids of the batches answered 200.
			var mu sync.Mutex
			acked := map[string]bool{}
			var sent, failed int
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := &http.Client{Timeout: 5 * time.Second}
					for b := 0; ; b++ {
						select {
						case <-stop:
							return
						default:
						}
						ids, body := batch(w, b, 200)
						req, _ := http.NewRequest("POST", srv.URL+"/api/v1/assignments", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+key.Secret)
						req.Header.Set("Content-Type", "application/json")
						resp, err := hc.Do(req)
						mu.Lock()
						sent++
						if err == nil && resp.StatusCode == 200 {
							for _, id := range ids {
								acked[id] = true
							}
						} else {
							failed++
						}
						mu.Unlock()
						if err != nil {
							return // the server is gone
						}
						resp.Body.Close()
					}
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			if err := srv.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			srv.Cmd.Wait()
			close(stop)
			wg.Wait()
			if len(acked) == 0 {
				t.Fatalf("no batch was acknowledged before the kill (%d sent)", sent)
			}

			srv = servetest.Serve(t, bin, token, "--db", dsn)
			api = apiclient.New(srv.URL, token)
			var out bytes.Buffer
			if err := api.ExportAssignments(ctx, apiclient.ExportQuery{Format: "jsonl"}, &out); err != nil {
				t.Fatal(err)
			}
			stored := map[string]int{}
			sc := bufio.NewScanner(&out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var row struct {
					EventID string `json:"event_id"`
				}
				if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
					t.Fatalf("export line %q: %v", sc.Text(), err)
				}
				stored[row.EventID]++
			}
			lost, dup := 0, 0
			for id := range acked {
				if stored[id] == 0 {
					lost++
				}
			}
			for _, n := range stored {
				if n > 1 {
					dup++
				}
			}
			t.Logf("%s: %d requests, %d not acknowledged (cut by the kill); %d events acknowledged, %d stored, %d acknowledged but lost, %d stored twice",
				dialect, sent, failed, len(acked), len(stored), lost, dup)
			if lost != 0 || dup != 0 {
				t.Errorf("%d acknowledged events lost, %d stored twice", lost, dup)
			}
		})
	}
}

// batch is n assignment events in the SDK's wire form, with ids unique to
// sender w and batch b.
func batch(w, b, n int) ([]string, []byte) {
	ids := make([]string, n)
	var buf strings.Builder
	buf.WriteByte('[')
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range n {
		ids[i] = fmt.Sprintf("kill9-%d-%d-%d", w, b, i)
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"eventId":%q,"featureFlag":"checkout","allocation":"exp","experiment":"checkout-exp","variation":"control","subject":"user-%d-%d-%d","timestamp":%q,"subjectAttributes":{},"metaData":{"sdkName":"kill9"}}`,
			ids[i], w, b, i, now)
	}
	buf.WriteByte(']')
	return ids, []byte(buf.String())
}
