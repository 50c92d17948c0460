package leakcheck

import (
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// TestFindsALeak: a goroutine blocked on a channel is reported, with its
// stack, until it ends.
func TestFindsALeak(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		blockedHere(stop)
	}()
	err := Check(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "blockedHere") {
		t.Errorf("Check with a goroutine running: %v", err)
	}
	close(stop)
	<-done
	if err := Check(time.Second); err != nil {
		t.Errorf("Check after the goroutine ended: %v", err)
	}
}

// TestWaitsForEnding: a goroutine that ends within the wait is no leak.
func TestWaitsForEnding(t *testing.T) {
	go time.Sleep(20 * time.Millisecond)
	if err := Check(2 * time.Second); err != nil {
		t.Error(err)
	}
}

//go:noinline
func blockedHere(stop chan struct{}) { <-stop }
