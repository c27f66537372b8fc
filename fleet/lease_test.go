package fleet_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/internal/store"
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

// downStore fails every operation while down is set, as a stopped
// memcached server does, and counts the operations it failed.
type downStore struct {
	store.Store
	down   atomic.Bool
	failed atomic.Int64
}

var errDown = errors.New("dial tcp: connection refused")

func (d *downStore) fail() bool {
	if d.down.Load() {
		d.failed.Add(1)
		return true
	}
	return false
}

func (d *downStore) Get(ctx context.Context, key string) (*store.Item, error) {
	if d.fail() {
		return nil, errDown
	}
	return d.Store.Get(ctx, key)
}

func (d *downStore) Add(ctx context.Context, it *store.Item) error {
	if d.fail() {
		return errDown
	}
	return d.Store.Add(ctx, it)
}

func (d *downStore) CompareAndSwap(ctx context.Context, it *store.Item) error {
	if d.fail() {
		return errDown
	}
	return d.Store.CompareAndSwap(ctx, it)
}

// TestLeaseOutlivesAnUnreachableStore: while the memcached server holding
// the lease cannot be reached for many periods, the owner keeps its lease
// (a dispatcher that stopped on it turned one memcached node's failure
// into an outage of the whole fleet) and counts the failed renewals; once
// the store answers it writes the record again, and a second dispatcher
// is still refused.
func TestLeaseOutlivesAnUnreachableStore(t *testing.T) {
	st := &downStore{Store: storetest.New(t)}
	// As in the tests above: a second dispatcher takes a lease that goes
	// unrenewed for one period, and on a loaded machine the owner's
	// renewals (every third of a period) can be held back 100 ms.
	period := 300 * time.Millisecond
	failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "failures"})
	cfg := fleet.LeaseConfig{Store: st, Prefix: "arena-test:", Period: period, Addr: "owner", RenewFailures: failures}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := fleet.AcquireLease(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	keepDone := make(chan error, 1)
	go func() { keepDone <- l.Keep(ctx) }()

	st.down.Store(true)
	// Ten periods of renewals (three a period) that all fail.
	waitfor.Cond(t, "thirty failed store operations, or the owner stopping", func() bool {
		return st.failed.Load() >= 30 || len(keepDone) > 0
	})
	select {
	case err := <-keepDone:
		t.Fatalf("the owner stopped while the store was unreachable: %v", err)
	case <-l.Lost():
		t.Fatal("the lease was lost while the store was unreachable")
	default:
	}
	if n := testutil.ToFloat64(failures); n < 20 {
		t.Fatalf("%v failed renewals counted, want one per renewal", n)
	}
	// Down for longer than the record's TTL: it expired meanwhile, and the
	// owner writes it again once the store answers.
	st.down.Store(false)
	waitfor.Cond(t, "the owner writes the lease once the store answers", func() bool {
		it, err := st.Get(ctx, fleet.LeaseKey)
		return err == nil && strings.Contains(string(it.Value), `"owner"`)
	})
	cfg.Addr = "second"
	if _, err := fleet.AcquireLease(ctx, cfg); !errors.Is(err, fleet.ErrLeaseHeld) {
		t.Fatalf("a second dispatcher after the store came back: %v, want ErrLeaseHeld", err)
	}
	select {
	case <-l.Lost():
		t.Fatal("the lease was lost")
	default:
	}
}
