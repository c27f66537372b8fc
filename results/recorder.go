// Package results records the outcome of every room exactly once: a game
// server hands a room's result to a Recorder, which writes it to a
// file-backed outbox that survives the process, applies it to the player
// database (the match, the Elo changes and the players' records in one
// transaction, idempotent by room id) and, only then, answers with the
// rating changes the players may be shown. When the database is slow or
// down the answer is ErrPending: the result stays in the outbox and Run
// applies it once the database answers again, retrying with a bounded
// backoff; the players are told their result is pending, never shown a
// number that is not stored.
//
// A result applied twice (a retried report, a process that dies between
// the database's commit and marking its entry done, a process that
// restarts) changes nothing the second time.
//
// The outbox (see outbox.go) is a directory of append-only log segments,
// each written by one Recorder, which holds a lock on it while it lives:
// queuing a result is one write to an open file, marking it applied
// another, where a file per result cost a create, a rename and an unlink
// in one directory (docs/benchmarks/playerdb.md).
package results

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/playerdb"
)

// Sentinel errors of Record, checked with errors.Is.
var (
	// ErrPending: the result is safe in the outbox but not yet in the
	// database; Run applies it later. Show the players "pending".
	ErrPending = errors.New("result pending")
	// ErrNotRecorded: the result could be neither queued nor applied
	// (the outbox is full or unwritable and the database failed too).
	// Ratings are unchanged; show the players that the result was not
	// recorded.
	ErrNotRecorded = errors.New("result not recorded")
)

// Applier applies a result to the player database (playerdb.DB).
type Applier interface {
	Apply(ctx context.Context, r playerdb.Result) (playerdb.Applied, error)
}

// Invalidator drops cached player records after their ratings changed
// (playerdb.Cache); a failure only leaves a record stale for its TTL.
type Invalidator interface {
	Invalidate(ctx context.Context, ids ...string) error
}

// Config configures a Recorder.
type Config struct {
	// Dir is the outbox directory (required), created if missing. Every
	// process of one host may share it: each writes segments of its own,
	// and a process's entries left pending when it exits are applied by
	// another Recorder on the directory.
	Dir string
	// Attempt bounds Record's own try at the database; zero means 2s.
	Attempt time.Duration
	// MinRetry and MaxRetry bound Run's backoff after a failed try
	// (doubling from MinRetry up to MaxRetry); zero means 250ms and 30s.
	MinRetry, MaxRetry time.Duration
	// Scan is how often Run looks for entries while the database is
	// healthy (left by this process's failed tries or by processes that
	// died); zero means 1s.
	Scan time.Duration
	// MaxEntries bounds the outbox; Record refuses to queue beyond it
	// (ErrNotRecorded); zero means 100000.
	MaxEntries int
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics (arena_results_*); nil registers
	// none.
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	if c.Attempt <= 0 {
		c.Attempt = 2 * time.Second
	}
	if c.MinRetry <= 0 {
		c.MinRetry = 250 * time.Millisecond
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = 30 * time.Second
	}
	if c.MaxRetry < c.MinRetry {
		c.MaxRetry = c.MinRetry
	}
	if c.Scan <= 0 {
		c.Scan = time.Second
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Recorder records room results exactly once. Record is safe for
// concurrent use; run one Run per Recorder.
type Recorder struct {
	db    Applier
	cache Invalidator
	ob    *outbox
	cfg   Config
	log   *slog.Logger

	mu       sync.Mutex
	inflight map[string]bool       // rooms a Record call or the drain is applying now
	queued   map[string]struct{}   // rooms with an outbox entry: the last listing, plus Record's since, less the drained
	own      map[string]ownPending // this Recorder's entries the database has not taken yet
	tails    map[string]*tail      // live Recorders' segments, followed (by Run's drain only)

	pending atomic.Int64 // len(queued), for lock-free reads
	failing atomic.Bool  // the last try at the database failed
	stale   chan []string

	outcomes *prometheus.CounterVec
	applyDur prometheus.Histogram
	backlog  prometheus.GaugeFunc
}

// ownPending is a result this Recorder queued in its own segment and
// could not apply yet.
type ownPending struct {
	res playerdb.Result
	seg *segment
}

// New returns a Recorder applying results to db through the outbox in
// cfg.Dir; cache (may be nil) is told which players' records changed.
func New(db Applier, cache Invalidator, cfg Config) (*Recorder, error) {
	cfg.defaults()
	ob, err := openOutbox(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("new recorder: %w", err)
	}
	r := &Recorder{db: db, cache: cache, ob: ob, cfg: cfg, log: cfg.Logger,
		inflight: map[string]bool{}, queued: map[string]struct{}{}, own: map[string]ownPending{}, stale: make(chan []string, 1024),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_results_total",
			Help: "Room results by outcome: applied (stored, shown), duplicate (already stored), pending (queued in the outbox), drained (applied later from the outbox), rejected (malformed), not_recorded.",
		}, []string{"outcome"}),
		applyDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "arena_results_apply_seconds",
			Help:    "Time to apply one result to the player database (successful tries).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	r.backlog = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "arena_results_outbox_entries", Help: "Results waiting in the outbox for the database."},
		func() float64 { return float64(r.pending.Load()) })
	if rooms, err := ob.rooms(); err == nil {
		// The entries of the segments no live Recorder holds, too.
		if cs, _, _, err := ob.claimSegments(); err == nil {
			for _, c := range cs {
				for _, e := range c.entries {
					rooms = append(rooms, e.Room)
				}
				_ = c.release(false)
			}
		}
		r.setQueued(rooms)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r); err != nil {
			return nil, fmt.Errorf("new recorder: metrics: %w", err)
		}
	}
	return r, nil
}

// Describe implements prometheus.Collector: the arena_results_* metrics.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	r.outcomes.Describe(ch)
	r.applyDur.Describe(ch)
	r.backlog.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.outcomes.Collect(ch)
	r.applyDur.Collect(ch)
	r.backlog.Collect(ch)
}

// Record stores res exactly once and returns the rating changes to show.
//
// It checks res (playerdb.ErrInvalid, wrapped, for a malformed result:
// nothing is stored), writes it to the outbox (where it survives this
// process), and tries the database for at most Config.Attempt. On success
// (the database's commit is durable) the entry is marked done and the
// changes returned (Duplicate when the room was already recorded: the
// changes recorded then). When the database fails the entry is synced to
// the disk (one fsync shared by the results going pending at the same
// moment) and the error wraps ErrPending: the result is safe in the outbox
// and Run applies it later. When the outbox is full or cannot be written
// Record still tries the database, and fails with ErrNotRecorded if that
// fails too.
func (r *Recorder) Record(ctx context.Context, res playerdb.Result) (playerdb.Applied, error) {
	if err := res.Check(); err != nil {
		r.outcomes.WithLabelValues("rejected").Inc()
		return playerdb.Applied{}, fmt.Errorf("record result: %w", err)
	}
	r.mu.Lock()
	busy := r.inflight[res.Room]
	r.inflight[res.Room] = true
	r.mu.Unlock()
	if busy {
		// The same room reported twice at once: the first report's
		// outcome is the room's; this one waits for nothing.
		return playerdb.Applied{}, fmt.Errorf("record result %s: %w: already being recorded", res.Room, ErrPending)
	}
	defer func() {
		r.mu.Lock()
		delete(r.inflight, res.Room)
		r.mu.Unlock()
	}()

	var queueErr error
	var seg *segment
	if r.pending.Load() >= int64(r.cfg.MaxEntries) {
		queueErr = fmt.Errorf("outbox holds %d results", r.pending.Load())
	} else {
		seg, queueErr = r.ob.put(res)
	}
	if queueErr != nil {
		r.log.Error("result not queued in the outbox; trying the database directly", "room", res.Room, "err", queueErr)
	}
	applied, err := r.apply(ctx, res)
	switch {
	case err == nil:
		if seg != nil {
			if derr := r.ob.done(seg, res.Room); derr != nil {
				// Left unmarked, it is applied again later: a duplicate, no change.
				r.log.Warn("applied result left unmarked in the outbox", "room", res.Room, "err", derr)
			}
		}
		r.mu.Lock()
		old, had := r.own[res.Room] // an earlier report of the room, pending
		delete(r.own, res.Room)
		delete(r.queued, res.Room)
		r.pending.Store(int64(len(r.queued)))
		r.mu.Unlock()
		if had {
			_ = r.ob.done(old.seg, res.Room)
		}
		r.done(res, applied, "applied")
		return applied, nil
	case errors.Is(err, playerdb.ErrInvalid):
		if seg != nil {
			_ = r.ob.rejectResult(res)
			_ = r.ob.done(seg, res.Room)
		}
		r.outcomes.WithLabelValues("rejected").Inc()
		return playerdb.Applied{}, fmt.Errorf("record result %s: %w", res.Room, err)
	case queueErr != nil:
		r.outcomes.WithLabelValues("not_recorded").Inc()
		return playerdb.Applied{}, fmt.Errorf("record result %s: %w: outbox: %v; database: %v", res.Room, ErrNotRecorded, queueErr, err)
	default:
		if serr := r.ob.sync(seg); serr != nil {
			_ = r.ob.done(seg, res.Room) // not relied on: leave it to nobody
			r.outcomes.WithLabelValues("not_recorded").Inc()
			return playerdb.Applied{}, fmt.Errorf("record result %s: %w: outbox: %v; database: %v", res.Room, ErrNotRecorded, serr, err)
		}
		r.mu.Lock()
		old, had := r.own[res.Room] // an earlier report of the room, superseded
		r.own[res.Room] = ownPending{res: res, seg: seg}
		r.queued[res.Room] = struct{}{}
		r.pending.Store(int64(len(r.queued)))
		r.mu.Unlock()
		if had {
			_ = r.ob.done(old.seg, res.Room)
		}
		r.outcomes.WithLabelValues("pending").Inc()
		r.log.Warn("result queued in the outbox: the database failed", "room", res.Room, "err", err)
		return playerdb.Applied{}, fmt.Errorf("record result %s: %w: %v", res.Room, ErrPending, err)
	}
}

// apply tries the database once, for at most Config.Attempt.
func (r *Recorder) apply(ctx context.Context, res playerdb.Result) (playerdb.Applied, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Attempt)
	defer cancel()
	start := time.Now()
	a, err := r.db.Apply(ctx, res)
	if err != nil {
		if !errors.Is(err, playerdb.ErrInvalid) {
			r.failing.Store(true)
		}
		return a, err
	}
	r.failing.Store(false)
	r.applyDur.Observe(time.Since(start).Seconds())
	return a, nil
}

// done counts an applied result and drops its players' cached records
// (retried in the background when memcached does not answer in time; left
// to the cache TTL if that queue is full).
func (r *Recorder) done(res playerdb.Result, a playerdb.Applied, outcome string) {
	if a.Duplicate {
		outcome = "duplicate"
	}
	r.outcomes.WithLabelValues(outcome).Inc()
	if r.cache == nil || a.Duplicate {
		return
	}
	ids := make([]string, len(res.Players))
	for i, p := range res.Players {
		ids[i] = p.UUID
	}
	// Dropped at once (memcached answers in well under a millisecond), so
	// a player who reads its record right after seeing the result reads
	// the new one; what memcached does not take within invalidateWait is
	// left to invalidateLoop's retries.
	ctx, cancel := context.WithTimeout(context.Background(), invalidateWait)
	err := r.cache.Invalidate(ctx, ids...)
	cancel()
	if err == nil {
		return
	}
	select {
	case r.stale <- ids:
	default:
	}
}

// invalidateWait bounds how long recording a result waits for memcached
// to drop its players' cached records before leaving it to the retries.
const invalidateWait = 200 * time.Millisecond

// Status reports how many results wait in the outbox and whether the last
// try at the database failed: the process is unhealthy while it fails.
func (r *Recorder) Status() (pending int, failing bool) {
	return int(r.pending.Load()), r.failing.Load()
}

// Run applies the outbox's entries until ctx ends: every Config.Scan
// while the database answers, and after a failure with a backoff doubling
// from MinRetry to MaxRetry. It also drops changed players' cached
// records.
func (r *Recorder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.invalidateLoop(ctx)
	}()
	defer wg.Wait()
	backoff := r.cfg.MinRetry
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.drain(ctx) {
			backoff = r.cfg.MinRetry
			t.Reset(r.cfg.Scan)
		} else {
			t.Reset(backoff)
			backoff = min(2*backoff, r.cfg.MaxRetry)
		}
	}
}

// drain applies every outbox entry no Record call is working on: this
// Recorder's own pending ones, then those of the segments no live
// Recorder holds (claimed: deleted once all applied), then the ROOM.json
// files, oldest first; it stops at the first database failure and
// reports false.
func (r *Recorder) drain(ctx context.Context) bool {
	rooms, err := r.ob.rooms()
	if err != nil {
		r.log.Error("outbox unreadable", "err", err)
		return false
	}
	cs, busy, bad, err := r.ob.claimSegments()
	if err != nil {
		r.log.Error("outbox unreadable", "err", err)
		return false
	}
	for _, e := range bad {
		r.log.Error("outbox line unreadable", "err", e)
		r.outcomes.WithLabelValues("rejected").Inc()
	}
	released := 0
	defer func() {
		for _, c := range cs[released:] {
			_ = c.release(false)
		}
	}()
	all := slices.Clone(rooms)
	for _, c := range cs {
		for _, e := range c.entries {
			all = append(all, e.Room)
		}
	}
	// The segments of live Recorders: their entries are counted, and
	// those left unmarked for longer than their owner's try at the
	// database can take (pending there) are tried here too, so this
	// Recorder's Status reports a database that fails them.
	now := time.Now()
	tails := make(map[string]*tail, len(busy))
	type stuckEntry struct {
		t   *tail
		res playerdb.Result
	}
	var stuck []stuckEntry
	for _, name := range busy {
		t := r.tails[name]
		if t == nil {
			t = &tail{}
		}
		if err := r.ob.follow(t, name, now); err != nil {
			continue // gone meanwhile: drained by its owner or claimed
		}
		tails[name] = t
		for _, res := range t.led.waiting() {
			all = append(all, res.Room)
			if now.Sub(t.since[res.Room]) > r.cfg.Attempt+r.cfg.Scan {
				stuck = append(stuck, stuckEntry{t, res})
			}
		}
	}
	r.tails = tails
	r.mu.Lock()
	own := make([]ownPending, 0, len(r.own))
	for room, op := range r.own {
		own = append(own, op)
		all = append(all, room)
	}
	r.mu.Unlock()
	r.setQueued(all)

	for _, op := range own {
		if ctx.Err() != nil {
			return true
		}
		ok, tried := r.drainResult(ctx, op.res, func() error { return r.ob.done(op.seg, op.res.Room) })
		if tried && ok {
			r.mu.Lock()
			delete(r.own, op.res.Room)
			r.mu.Unlock()
		}
		if !ok {
			return false
		}
	}
	for _, c := range cs {
		all := true
		for _, e := range c.entries {
			if ctx.Err() != nil {
				return true
			}
			ok, tried := r.drainResult(ctx, e, func() error { return c.done(e.Room) })
			if !ok {
				return false
			}
			all = all && tried
		}
		released++
		if err := c.release(all); err != nil {
			r.log.Warn("drained outbox segment not deleted", "segment", c.name, "err", err)
		}
	}
	for _, room := range rooms {
		if ctx.Err() != nil {
			return true
		}
		if !r.take(room) {
			continue
		}
		ok := r.drainOne(ctx, room)
		r.untake(room, ok)
		if !ok {
			return false
		}
	}
	for _, e := range stuck {
		if ctx.Err() != nil {
			return true
		}
		// Applied here, the entry stays unmarked in its owner's segment
		// (the owner's own retry finds it a duplicate and marks it); this
		// Recorder forgets it.
		if ok, _ := r.drainResult(ctx, e.res, func() error { e.t.led.forget(e.res.Room); return nil }); !ok {
			return false
		}
	}
	// Everything queued is in (here or by another process).
	r.failing.Store(false)
	return true
}

// take marks room as being applied by the caller; false when a Record
// call or the drain already is.
func (r *Recorder) take(room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight[room] {
		return false
	}
	r.inflight[room] = true
	return true
}

// untake ends take; applied drops room from the queued rooms.
func (r *Recorder) untake(room string, applied bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, room)
	if applied {
		delete(r.queued, room)
		r.pending.Store(int64(len(r.queued)))
	}
}

// drainResult applies a queued result and then marks it done with mark;
// tried is false when a Record call was applying the same room (left
// alone), ok false when the database failed.
func (r *Recorder) drainResult(ctx context.Context, res playerdb.Result, mark func() error) (ok, tried bool) {
	if !r.take(res.Room) {
		return true, false
	}
	ok = r.applyQueued(ctx, res, mark)
	r.untake(res.Room, ok)
	return ok, true
}

// applyQueued applies one queued result and marks it done; false when the
// database failed. A result the database refuses as malformed is kept in
// rejected/.
func (r *Recorder) applyQueued(ctx context.Context, res playerdb.Result, mark func() error) bool {
	a, err := r.apply(ctx, res)
	switch {
	case errors.Is(err, playerdb.ErrInvalid):
		r.log.Error("database refused an outbox entry; kept in rejected/", "room", res.Room, "err", err)
		_ = r.ob.rejectResult(res)
		r.outcomes.WithLabelValues("rejected").Inc()
	case err != nil:
		r.log.Warn("outbox: database still failing", "room", res.Room, "err", err)
		return false
	default:
		r.log.Info("pending result applied", "room", res.Room, "duplicate", a.Duplicate)
		r.done(res, a, "drained")
	}
	if err := mark(); err != nil {
		r.log.Warn("applied result left unmarked in the outbox", "room", res.Room, "err", err)
	}
	return true
}

// setQueued replaces the set of queued rooms with a directory listing.
// Rooms a Record call is working on keep their state: the listing may
// have been taken before their entry was written or after it was removed.
func (r *Recorder) setQueued(rooms []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]struct{}, len(rooms))
	for _, room := range rooms {
		if !r.inflight[room] {
			next[room] = struct{}{}
		}
	}
	for room := range r.inflight {
		if _, ok := r.queued[room]; ok {
			next[room] = struct{}{}
		}
	}
	r.queued = next
	r.pending.Store(int64(len(next)))
}

// drainOne applies one ROOM.json entry; false when the database failed.
func (r *Recorder) drainOne(ctx context.Context, room string) bool {
	res, err := r.ob.get(room)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true // applied by another process meanwhile
	case errors.Is(err, playerdb.ErrInvalid):
		r.log.Error("outbox entry unreadable; moved to rejected/", "room", room, "err", err)
		_ = r.ob.reject(room)
		r.outcomes.WithLabelValues("rejected").Inc()
		return true
	case err != nil:
		r.log.Error("outbox entry unreadable", "room", room, "err", err)
		return false
	}
	return r.applyQueued(ctx, res, func() error { return r.ob.remove(room) })
}

// Close releases the Recorder's outbox segments, for another Recorder on
// the directory to claim the entries not yet applied (a process's exit
// does the same). Record then applies to the database only.
func (r *Recorder) Close() error {
	r.ob.close()
	return nil
}

// invalidateLoop drops the cached records of players whose ratings
// changed. A record it could not drop (memcached down or stalled) is
// retried every quarter second until it is dropped or the cache's TTL has
// expired it anyway, so once memcached answers again a stale record lives
// at most a retry longer.
func (r *Recorder) invalidateLoop(ctx context.Context) {
	retry := map[string]time.Time{} // player -> when the cache's TTL expires it anyway
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	drop := func(ids []string) {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, id := range ids {
			if err := r.cache.Invalidate(ictx, id); err != nil {
				if _, again := retry[id]; !again {
					r.log.Warn("cached player record not dropped; retrying", "player", id, "err", err)
					retry[id] = time.Now().Add(playerdb.CacheTTL)
				}
				continue
			}
			delete(retry, id)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ids := <-r.stale:
			drop(ids)
		case now := <-tick.C:
			if len(retry) == 0 {
				continue
			}
			ids := make([]string, 0, len(retry))
			for id, until := range retry {
				if now.After(until) {
					delete(retry, id)
					continue
				}
				ids = append(ids, id)
			}
			drop(ids)
		}
	}
}
