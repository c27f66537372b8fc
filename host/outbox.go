package host

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/results"
)

// outboxTarget is where the host applies its outbox: the database and the
// memcached store whose cached player records the results change.
type outboxTarget struct {
	dsn      string // never logged (playerdb.Redact)
	memcache string // comma-separated; "" with Config.Store or none
	prefix   string
}

// outboxTargetLocked returns the database the outbox goes to: the host's
// own (Config.Database, --db), else the one in the dispatcher's last
// registration answer; the zero target while neither is known. Callers
// hold a.mu.
func (a *Agent) outboxTargetLocked() outboxTarget {
	var t outboxTarget
	d := a.defaults.GetDefaults()
	t.dsn = a.cfg.Database
	if t.dsn == "" {
		t.dsn = d.GetDatabaseDsn()
	}
	if t.dsn != "" && a.cfg.Store == nil {
		mc := a.cfg.Memcache
		if len(mc) == 0 {
			mc = d.GetMemcache()
		}
		t.memcache, t.prefix = strings.Join(mc, ","), d.GetStorePrefix()
	}
	return t
}

// drainOutbox applies the results this machine's processes left in the
// outbox (Config.OutboxDir) until ctx ends, so that a result that was
// pending when its process exited reaches the database with no process
// of the host running. It waits for a database (Config.Database, or the
// dispatcher's from its registration answer), and runs a results.Recorder
// on the outbox; a later registration naming another database or
// memcached restarts it. A live process's entries are its own (it holds
// the lock of its outbox segment); the host applies those of processes
// that exited, and applying a result is idempotent by room anyway.
func (a *Agent) drainOutbox(ctx context.Context) {
	var cur outboxTarget
	stop := func() {}
	defer func() { stop() }()
	for {
		a.mu.Lock()
		want := a.outboxTargetLocked()
		a.mu.Unlock()
		if want != cur {
			stop()
			cur, stop = want, func() {}
			if want.dsn != "" {
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); a.runRecorder(rctx, want) }()
				stop = func() { cancel(); <-done }
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.registered:
		}
	}
}

// runRecorder opens t's database, retrying with a backoff (250 ms
// doubling to 30 s) while it does not answer, and applies the outbox to
// it until ctx ends.
func (a *Agent) runRecorder(ctx context.Context, t outboxTarget) {
	name := playerdb.Redact(t.dsn)
	var db *playerdb.DB
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 30*time.Second) {
		var err error
		if db, err = playerdb.Open(ctx, playerdb.Config{DSN: t.dsn, MaxConns: 2}); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("results database unreachable: the outbox waits for it", "db", name, "dir", a.cfg.OutboxDir, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	defer db.Close()
	st := a.cfg.Store
	if st == nil && t.memcache != "" {
		mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: slices.Collect(strings.SplitSeq(t.memcache, ","))})
		if err != nil {
			a.log.Warn("memcached for the player cache: results are applied, cached records expire by themselves", "err", err)
		} else {
			st = store.Prefixed(mc, t.prefix)
		}
	}
	var cache results.Invalidator
	if st != nil {
		cache = playerdb.NewCache(db, st)
	}
	rec, err := results.New(db, cache, results.Config{Dir: a.cfg.OutboxDir, Logger: a.log})
	if err != nil {
		a.log.Error("results outbox: the host cannot drain it", "dir", a.cfg.OutboxDir, "err", err)
		return
	}
	a.log.Info("draining the results outbox", "dir", a.cfg.OutboxDir, "db", name)
	rec.Run(ctx)
	_ = rec.Close()
}
