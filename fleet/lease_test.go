package fleet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
)

// TestLease: a second dispatcher on the same store and prefix refuses to
// start while the first renews its lease, with a message naming the
// prefix; after the first is killed (it stops renewing, nothing released)
// the next one takes the lease within about one period; a clean stop
// releases it at once.
func TestLease(t *testing.T) {
	st := storetest.New(t)
	period := 300 * time.Millisecond
	cfg := fleet.LeaseConfig{Store: st, Prefix: "arena-test:", Period: period, Addr: "first"}
	ctx := context.Background()
	first, err := fleet.AcquireLease(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kctx, kill := context.WithCancel(ctx)
	keepDone := make(chan error, 1)
	go func() { keepDone <- first.Keep(kctx) }()

	cfg.Addr = "second"
	_, err = fleet.AcquireLease(ctx, cfg)
	if !errors.Is(err, fleet.ErrLeaseHeld) || !strings.Contains(err.Error(), `"arena-test:"`) || !strings.Contains(err.Error(), "first") {
		t.Fatalf("second dispatcher: %v; want ErrLeaseHeld naming the prefix and the owner", err)
	}

	// A clean stop releases the lease: the next dispatcher starts at once.
	kill()
	<-keepDone
	start := time.Now()
	second, err := fleet.AcquireLease(ctx, cfg)
	if err != nil || time.Since(start) > period {
		t.Fatalf("after a clean stop: %v in %v, want the lease at once", err, time.Since(start))
	}
	// second holds it and never renews it: a dispatcher killed with -9.
	cfg.Addr = "third"
	start = time.Now()
	third, err := fleet.AcquireLease(ctx, cfg)
	if err != nil {
		t.Fatalf("after the owner stopped renewing: %v", err)
	}
	if took := time.Since(start); took < period/2 {
		t.Fatalf("took over after %v: it must wait for the owner to miss its renewals", took)
	}
	// The abandoned owner, were it to wake, finds it lost.
	lctx, cancel := context.WithTimeout(ctx, 5*period)
	defer cancel()
	if err := second.Keep(lctx); !errors.Is(err, fleet.ErrLeaseLost) {
		t.Fatalf("the old owner's renewal: %v, want ErrLeaseLost", err)
	}
	select {
	case <-second.Lost():
	default:
		t.Fatal("Lost not closed")
	}
	_ = third
}

// TestLeaseSurvivesAnEmptiedMemcached: when the lease record vanishes
// (memcached restarted empty) the owner takes it again instead of
// stopping, and a second dispatcher is still refused.
func TestLeaseSurvivesAnEmptiedMemcached(t *testing.T) {
	st := storetest.New(t)
	period := 300 * time.Millisecond
	cfg := fleet.LeaseConfig{Store: st, Prefix: "arena-test:", Period: period, Addr: "owner"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := fleet.AcquireLease(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	keepDone := make(chan error, 1)
	go func() { keepDone <- l.Keep(ctx) }()
	if err := st.Delete(ctx, fleet.LeaseKey); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "the owner writes the lease again", func() bool { _, err := st.Get(ctx, fleet.LeaseKey); return err == nil })
	select {
	case err := <-keepDone:
		t.Fatalf("the owner stopped: %v", err)
	case <-l.Lost():
		t.Fatal("the lease was lost")
	default:
	}
	cfg.Addr = "second"
	if _, err := fleet.AcquireLease(ctx, cfg); !errors.Is(err, fleet.ErrLeaseHeld) {
		t.Fatalf("a second dispatcher after the record was taken again: %v", err)
	}
}
