package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
)

// LeaseKey is the store key of the fleet's ownership lease (under the
// store prefix).
const LeaseKey = "fleet:owner"

// ErrLeaseHeld: another live dispatcher owns the fleet under this prefix.
var ErrLeaseHeld = errors.New("another dispatcher owns this fleet")

// ErrLeaseLost: the lease was taken over or could not be renewed in time.
var ErrLeaseLost = errors.New("the fleet lease was lost")

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	// Store holds the lease (the fleet's prefixed store); Prefix is that
	// prefix, for messages.
	Store  store.Store
	Prefix string
	// Period is how long a lease lasts unrenewed (default 3s); it is
	// renewed every Period/3. A dispatcher starting after one killed with
	// -9 waits at most one Period.
	Period time.Duration
	// Addr names this dispatcher in the lease record (its host-control or
	// HTTP address), for the message another one gets.
	Addr string
	Log  *slog.Logger
	// RenewFailures, if set, counts renewals that could not reach the
	// store (arena_fleet_lease_renew_failures_total).
	RenewFailures prometheus.Counter
}

// leaseRecord is the lease as stored.
type leaseRecord struct {
	Owner    string `json:"owner"` // random per dispatcher start
	Pid      int    `json:"pid"`
	Hostname string `json:"hostname"`
	Addr     string `json:"addr"`
	PeriodMS int64  `json:"period_ms"`
	Renewed  int64  `json:"renewed_unix_ms"`
}

// Lease is a dispatcher's ownership of the fleet under a store prefix: a
// record in memcached that the live owner renews. A second dispatcher on
// the same memcached and prefix never touches the first one's fleet: it
// sees the record renewed and refuses to start (ErrLeaseHeld); after an
// owner killed with -9 the record stops changing and the next dispatcher
// takes it over after one period. No clock is compared: only whether the
// record changes.
type Lease struct {
	cfg   LeaseConfig
	me    leaseRecord
	mu    sync.Mutex
	cas   uint64
	lost  chan struct{}
	once  sync.Once
	cause error
}

// AcquireLease takes the lease: at once when nobody holds it; after one
// period when its holder stopped renewing it; never while a live owner
// renews it (ErrLeaseHeld, naming the prefix and the owner).
func AcquireLease(ctx context.Context, cfg LeaseConfig) (*Lease, error) {
	if cfg.Period <= 0 {
		cfg.Period = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	l := &Lease{cfg: cfg, lost: make(chan struct{}),
		me: leaseRecord{Owner: auth.RandomID(12), Pid: os.Getpid(), Hostname: host, Addr: cfg.Addr, PeriodMS: cfg.Period.Milliseconds()}}
	for ctx.Err() == nil {
		l.me.Renewed = time.Now().UnixMilli()
		value, _ := json.Marshal(l.me)
		err := cfg.Store.Add(ctx, &store.Item{Key: LeaseKey, Value: value, TTL: l.ttl()})
		if err == nil {
			if err := l.reread(ctx); err != nil {
				return nil, err
			}
			return l, nil
		}
		if !errors.Is(err, store.ErrNotStored) {
			return nil, fmt.Errorf("acquire the fleet lease under prefix %q: %w", cfg.Prefix, err)
		}
		it, err := cfg.Store.Get(ctx, LeaseKey)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("acquire the fleet lease under prefix %q: %w", cfg.Prefix, err)
		}
		var held leaseRecord
		_ = json.Unmarshal(it.Value, &held)
		period := time.Duration(held.PeriodMS) * time.Millisecond
		if period <= 0 || period > time.Minute {
			period = cfg.Period
		}
		cfg.Log.Info("the fleet lease is held; watching whether its owner renews it", "prefix", cfg.Prefix,
			"owner_pid", held.Pid, "owner_host", held.Hostname, "owner_addr", held.Addr, "for", period)
		renewed, err := l.watch(ctx, it.CAS, period)
		if err != nil {
			return nil, err
		}
		if renewed {
			return nil, fmt.Errorf("%w under store prefix %q (pid %d on %s, %s); stop it, or give this dispatcher another --store-prefix",
				ErrLeaseHeld, cfg.Prefix, held.Pid, held.Hostname, held.Addr)
		}
		// Unrenewed for a whole period: its owner is gone. Take it.
		l.me.Renewed = time.Now().UnixMilli()
		value, _ = json.Marshal(l.me)
		err = cfg.Store.CompareAndSwap(ctx, &store.Item{Key: LeaseKey, Value: value, TTL: l.ttl(), CAS: it.CAS})
		if err == nil {
			cfg.Log.Warn("took over the fleet lease of a dispatcher that stopped renewing it", "prefix", cfg.Prefix, "previous_pid", held.Pid, "previous_host", held.Hostname)
			if err := l.reread(ctx); err != nil {
				return nil, err
			}
			return l, nil
		}
		if !errors.Is(err, store.ErrCASConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("acquire the fleet lease under prefix %q: %w", cfg.Prefix, err)
		}
	}
	return nil, ctx.Err()
}

func (l *Lease) ttl() time.Duration { return 10 * l.cfg.Period }

// watch reports whether the record changes from cas within period.
func (l *Lease) watch(ctx context.Context, cas uint64, period time.Duration) (bool, error) {
	deadline := time.Now().Add(period + period/10)
	t := time.NewTicker(min(period/10, 200*time.Millisecond))
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
		it, err := l.cfg.Store.Get(ctx, LeaseKey)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return false, nil // released
		case err != nil:
			return false, fmt.Errorf("watch the fleet lease under prefix %q: %w", l.cfg.Prefix, err)
		case it.CAS != cas:
			return true, nil
		}
	}
	return false, nil
}

// reread reads our record's CAS after writing it.
func (l *Lease) reread(ctx context.Context) error {
	it, err := l.cfg.Store.Get(ctx, LeaseKey)
	if err != nil {
		return fmt.Errorf("read the fleet lease under prefix %q: %w", l.cfg.Prefix, err)
	}
	var r leaseRecord
	if json.Unmarshal(it.Value, &r) != nil || r.Owner != l.me.Owner {
		return fmt.Errorf("%w under store prefix %q: taken at once by another dispatcher", ErrLeaseHeld, l.cfg.Prefix)
	}
	l.mu.Lock()
	l.cas = it.CAS
	l.mu.Unlock()
	return nil
}

// Keep renews the lease every Period/3 until ctx ends (then releases it)
// or the lease is lost to another dispatcher (its record names another
// owner); then Lost is closed and Keep returns ErrLeaseLost.
//
// A store that cannot be reached (the memcached server holding the record
// is down or stalled) does not end the lease: a dispatcher that stopped on
// it would turn one memcached node's failure into a fleet-wide outage.
// The owner keeps serving, logs once a period and counts each failed
// renewal (RenewFailures), and renews or takes the record again once the
// store answers; only then can it learn that another dispatcher took it,
// which another can do only by watching the record unrenewed for a whole
// period through a store this one could not reach (a partition between
// this dispatcher and that memcached server: docs/hosts.md).
func (l *Lease) Keep(ctx context.Context) error {
	t := time.NewTicker(l.cfg.Period / 3)
	defer t.Stop()
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-t.C:
		}
		err := l.renew(ctx)
		if errors.Is(err, store.ErrNotFound) {
			// The record vanished (memcached restarted empty, or evicted
			// it): take it again unless another dispatcher added one.
			if err = l.retake(ctx); err == nil {
				l.cfg.Log.Warn("the fleet lease record was gone from memcached; taken again", "prefix", l.cfg.Prefix)
			}
		}
		if errors.Is(err, store.ErrCASConflict) || errors.Is(err, store.ErrNotStored) {
			// Either our own earlier renewal, which timed out here but
			// reached memcached late, changed the version (the record
			// still names us), or another dispatcher holds it.
			err = l.reread(ctx)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrLeaseHeld):
			return l.lose(fmt.Errorf("%w under store prefix %q: another dispatcher took it", ErrLeaseLost, l.cfg.Prefix))
		default:
			if l.cfg.RenewFailures != nil {
				l.cfg.RenewFailures.Inc()
			}
			if time.Since(lastWarn) >= l.cfg.Period {
				lastWarn = time.Now()
				l.cfg.Log.Warn("fleet lease not renewed: the store is unreachable; still serving and retrying", "prefix", l.cfg.Prefix, "err", err)
			}
		}
	}
}

// retake adds the lease record again after it vanished; it fails when
// another dispatcher added one first.
func (l *Lease) retake(ctx context.Context) error {
	l.me.Renewed = time.Now().UnixMilli()
	value, _ := json.Marshal(l.me)
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Period/3)
	defer cancel()
	if err := l.cfg.Store.Add(rctx, &store.Item{Key: LeaseKey, Value: value, TTL: l.ttl()}); err != nil {
		return err
	}
	return l.reread(rctx)
}

func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	cas := l.cas
	l.mu.Unlock()
	l.me.Renewed = time.Now().UnixMilli()
	value, _ := json.Marshal(l.me)
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Period/3)
	defer cancel()
	if err := l.cfg.Store.CompareAndSwap(rctx, &store.Item{Key: LeaseKey, Value: value, TTL: l.ttl(), CAS: cas}); err != nil {
		return err
	}
	return l.reread(rctx)
}

func (l *Lease) lose(err error) error {
	l.once.Do(func() {
		l.cause = err
		close(l.lost)
	})
	l.cfg.Log.Error("the dispatcher lost its fleet lease", "prefix", l.cfg.Prefix, "err", err)
	return err
}

// Lost is closed when the lease is lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// release deletes the lease if it is still ours, so the next dispatcher
// starts at once.
func (l *Lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	it, err := l.cfg.Store.Get(ctx, LeaseKey)
	if err != nil {
		return
	}
	var r leaseRecord
	if json.Unmarshal(it.Value, &r) == nil && r.Owner == l.me.Owner {
		_ = l.cfg.Store.Delete(ctx, LeaseKey)
	}
}
