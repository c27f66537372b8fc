package results_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/results"
)

var ctx = context.Background()

// flaky is a database that can be taken down (every Apply fails) or
// stalled (every Apply blocks until its context ends).
type flaky struct {
	db      *playerdb.DB
	down    atomic.Bool
	stalled atomic.Bool
	calls   atomic.Int64
}

var errDown = errors.New("connection refused")

func (f *flaky) Apply(ctx context.Context, r playerdb.Result) (playerdb.Applied, error) {
	f.calls.Add(1)
	if f.stalled.Load() {
		<-ctx.Done()
		return playerdb.Applied{}, fmt.Errorf("apply: %w: %v", playerdb.ErrUnavailable, ctx.Err())
	}
	if f.down.Load() {
		return playerdb.Applied{}, fmt.Errorf("apply: %w: %v", playerdb.ErrUnavailable, errDown)
	}
	return f.db.Apply(ctx, r)
}

type invalidations struct {
	mu  sync.Mutex
	ids []string
}

func (i *invalidations) Invalidate(_ context.Context, ids ...string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ids = append(i.ids, ids...)
	return nil
}

func (i *invalidations) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.ids)
}

func room(id string) playerdb.Result {
	return playerdb.Result{Room: id, Game: "fight", Host: "h:1", Reason: "last_standing", Ended: time.Now(),
		Players: []playerdb.PlayerResult{{UUID: "a", Name: "A", Rank: 1}, {UUID: "b", Name: "B", Rank: 2}}}
}

func newRecorder(t *testing.T, db results.Applier, dir string, inv results.Invalidator) *results.Recorder {
	t.Helper()
	r, err := results.New(db, inv, results.Config{Dir: dir, Attempt: 300 * time.Millisecond, MinRetry: 5 * time.Millisecond, MaxRetry: 20 * time.Millisecond, Scan: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, r *results.Recorder) {
	c, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(c); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// queued counts the results waiting in the outbox dir.
func queued(t *testing.T, dir string) int {
	t.Helper()
	n, err := results.Pending(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func rating(t *testing.T, db *playerdb.DB, id string) playerdb.Rating {
	t.Helper()
	p, err := db.Player(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Ratings[playerdb.DefaultProfile]
}

func TestRecordAppliesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		dir := t.TempDir()
		inv := &invalidations{}
		r := newRecorder(t, db, dir, inv)
		run(t, r)
		a, err := r.Record(ctx, room("r1"))
		if err != nil || a.Ratings["a"] != (playerdb.RatingChange{Before: 1500, After: 1516}) || a.Duplicate {
			t.Fatalf("%+v, %v", a, err)
		}
		if f := queued(t, dir); f != 0 {
			t.Fatalf("outbox after an applied result: %v", f)
		}
		again, err := r.Record(ctx, room("r1"))
		if err != nil || !again.Duplicate || again.Ratings["a"].After != 1516 {
			t.Fatalf("a retried report: %+v, %v", again, err)
		}
		if ra := rating(t, db, "a"); ra.Games != 1 || ra.Rating != 1516 {
			t.Fatalf("rating applied twice: %+v", ra)
		}
		waitfor.Cond(t, "the players' cached records are dropped", func() bool { return inv.count() == 2 })
	})
}

func TestRecordRefusesMalformed(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	dir := t.TempDir()
	r := newRecorder(t, db, dir, nil)
	bad := room("r1")
	bad.Players[1].Name = string(make([]byte, 100))
	if _, err := r.Record(ctx, bad); !errors.Is(err, playerdb.ErrInvalid) {
		t.Fatalf("%v; want ErrInvalid", err)
	}
	if f := queued(t, dir); f != 0 {
		t.Fatalf("a malformed result was queued: %v", f)
	}
}

// TestDatabaseDownThenBack: results queue while the database is down, the
// players are told "pending", and every result is applied exactly once
// when it comes back.
func TestDatabaseDownThenBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := &flaky{db: dbtest.Open(t, b)}
		dir := t.TempDir()
		r := newRecorder(t, f, dir, nil)
		run(t, r)
		f.down.Store(true)
		for i := 0; i < 5; i++ {
			if _, err := r.Record(ctx, room(fmt.Sprintf("r%d", i))); !errors.Is(err, results.ErrPending) {
				t.Fatalf("record while down: %v; want ErrPending", err)
			}
		}
		if n, failing := r.Status(); n != 5 || !failing {
			t.Fatalf("status %d %v; want 5 pending, failing", n, failing)
		}
		if queued(t, dir) != 5 {
			t.Fatal("entries missing from the outbox")
		}
		f.down.Store(false)
		waitfor.Cond(t, "the outbox drains", func() bool { n, failing := r.Status(); return n == 0 && !failing })
		if ra := rating(t, f.db, "a"); ra.Games != 5 || ra.Wins != 5 {
			t.Fatalf("after draining: %+v; want 5 games, 5 wins", ra)
		}
		if queued(t, dir) != 0 {
			t.Fatal("drained entries left in the outbox")
		}
	})
}

// TestStalledDatabase: a database that hangs costs Record at most its
// attempt deadline, and the result is applied once it answers.
func TestStalledDatabase(t *testing.T) {
	f := &flaky{db: dbtest.Open(t, dbtest.SQLite)}
	dir := t.TempDir()
	r := newRecorder(t, f, dir, nil)
	f.stalled.Store(true)
	start := time.Now()
	if _, err := r.Record(ctx, room("slow")); !errors.Is(err, results.ErrPending) {
		t.Fatalf("%v; want ErrPending", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Record waited %v on a stalled database", d)
	}
	f.stalled.Store(false)
	run(t, r)
	waitfor.Cond(t, "the stalled result is applied", func() bool { n, _ := r.Status(); return n == 0 })
	if ra := rating(t, f.db, "a"); ra.Games != 1 {
		t.Fatalf("%+v", ra)
	}
}

// TestOutboxSurvivesTheProcess: a result queued by one recorder (a fight
// process that then dies) is applied by the next one on the same
// directory.
func TestOutboxSurvivesTheProcess(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	dir := t.TempDir()
	dead := &flaky{db: db}
	dead.down.Store(true)
	first := newRecorder(t, dead, dir, nil)
	if _, err := first.Record(ctx, room("orphan")); !errors.Is(err, results.ErrPending) {
		t.Fatal(err)
	}
	first.Close() // the process dies: its outbox segment is released
	// A new recorder starts on the dead one's outbox.
	second := newRecorder(t, db, dir, nil)
	if n, _ := second.Status(); n != 1 {
		t.Fatalf("a new recorder sees %d pending, want 1", n)
	}
	run(t, second)
	waitfor.Cond(t, "the orphaned result is applied", func() bool { _, err := db.Match(ctx, "orphan"); return err == nil })
	if ra := rating(t, db, "b"); ra.Games != 1 || ra.Losses != 1 {
		t.Fatalf("%+v", ra)
	}
}

// TestSharedOutboxAppliesOnce: several recorders (processes of one host)
// drain one directory at once; each result is applied once.
func TestSharedOutboxAppliesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		dir := t.TempDir()
		down := &flaky{db: db}
		down.down.Store(true)
		q := newRecorder(t, down, dir, nil)
		for i := 0; i < 20; i++ {
			if _, err := q.Record(ctx, room(fmt.Sprintf("s%d", i))); !errors.Is(err, results.ErrPending) {
				t.Fatal(err)
			}
		}
		rs := make([]*results.Recorder, 3)
		for i := range rs {
			rs[i] = newRecorder(t, db, dir, nil)
			run(t, rs[i])
		}
		// While q lives its entries are its own; once it dies the three
		// race to claim them.
		q.Close()
		waitfor.Cond(t, "the shared outbox drains", func() bool { return queued(t, dir) == 0 })
		waitfor.Cond(t, "every result is in", func() bool { return rating(t, db, "a").Games == 20 })
		if ra := rating(t, db, "a"); ra.Games != 20 || ra.Wins != 20 {
			t.Fatalf("%+v", ra)
		}
	})
}

// TestOutboxUnwritable: with no outbox the database is still tried; with
// neither the result is not recorded (and the caller says so).
func TestOutboxUnwritable(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	dir := filepath.Join(t.TempDir(), "outbox")
	f := &flaky{db: db}
	r := newRecorder(t, f, dir, nil)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Record(ctx, room("noq")); err != nil || a.Ratings["a"].After != 1516 {
		t.Fatalf("database up, outbox gone: %+v, %v", a, err)
	}
	f.down.Store(true)
	if _, err := r.Record(ctx, room("lost")); !errors.Is(err, results.ErrNotRecorded) {
		t.Fatalf("both down: %v; want ErrNotRecorded", err)
	}
	if _, err := db.Match(ctx, "lost"); !errors.Is(err, playerdb.ErrNotFound) {
		t.Fatalf("%v", err)
	}
}

func TestCorruptEntryMovedAside(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	dir := t.TempDir()
	r := newRecorder(t, db, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, "junk.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, r)
	waitfor.Cond(t, "the corrupt entry is moved to rejected/", func() bool {
		_, err := os.Stat(filepath.Join(dir, "rejected", "junk.json"))
		return err == nil
	})
	if n, failing := r.Status(); failing {
		t.Fatalf("a corrupt entry made the recorder unhealthy: %d %v", n, failing)
	}
}

// flakyCache fails every invalidation while down is set.
type flakyCache struct {
	invalidations
	down atomic.Bool
}

func (f *flakyCache) Invalidate(ctx context.Context, ids ...string) error {
	if f.down.Load() {
		return errors.New("memcached: i/o timeout")
	}
	return f.invalidations.Invalidate(ctx, ids...)
}

// TestInvalidationRetriedWhenTheCacheIsBack: a player's cached record that
// could not be dropped while memcached was down is dropped once it
// answers again.
func TestInvalidationRetriedWhenTheCacheIsBack(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	c := &flakyCache{}
	c.down.Store(true)
	r := newRecorder(t, db, t.TempDir(), c)
	run(t, r)
	if _, err := r.Record(ctx, room("r1")); err != nil {
		t.Fatal(err)
	}
	c.down.Store(false)
	waitfor.Cond(t, "both players' records are dropped after memcached came back", func() bool { return c.count() == 2 })
}

// commitsThenFails is a database whose every Apply commits and then
// fails as the answer is lost: the state a process leaves when it dies
// between the database's commit and removing the outbox entry.
type commitsThenFails struct{ db *playerdb.DB }

func (c commitsThenFails) Apply(ctx context.Context, r playerdb.Result) (playerdb.Applied, error) {
	if _, err := c.db.Apply(ctx, r); err != nil {
		return playerdb.Applied{}, err
	}
	return playerdb.Applied{}, fmt.Errorf("apply: %w: connection reset after commit", playerdb.ErrUnavailable)
}

// TestDiesBetweenCommitAndCleanup: a result committed to the database
// whose outbox entry was left behind (the process died before removing
// it) is drained by the next recorder as a duplicate: the ratings change
// once, and the entry goes.
func TestDiesBetweenCommitAndCleanup(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		dir := t.TempDir()
		first := newRecorder(t, commitsThenFails{db}, dir, nil)
		for _, id := range []string{"c1", "c2", "c3"} {
			if _, err := first.Record(ctx, room(id)); !errors.Is(err, results.ErrPending) {
				t.Fatalf("record %s: %v; want ErrPending", id, err)
			}
		}
		if ra := rating(t, db, "a"); ra.Games != 3 {
			t.Fatalf("before the restart: %+v; want 3 games", ra)
		}
		if n := queued(t, dir); n != 3 {
			t.Fatalf("%d entries left behind, want 3", n)
		}
		first.Close() // the process dies
		want := rating(t, db, "a")
		second := newRecorder(t, db, dir, nil)
		run(t, second)
		waitfor.Cond(t, "the left-behind entries are drained", func() bool {
			n, _ := second.Status()
			return n == 0 && queued(t, dir) == 0
		})
		if ra := rating(t, db, "a"); ra != want {
			t.Fatalf("after draining: %+v; want %+v (applied once)", ra, want)
		}
		again, err := second.Record(ctx, room("c2"))
		if err != nil || !again.Duplicate || again.Ratings["a"].After == 0 {
			t.Fatalf("c2 reported again: %+v, %v; want the recorded duplicate", again, err)
		}
	})
}

// TestManyPendingAtOnce: results going pending together (their segment's
// fsync shared between them) are all queued and all applied once the
// database is back.
func TestManyPendingAtOnce(t *testing.T) {
	f := &flaky{db: dbtest.Open(t, dbtest.SQLite)}
	f.down.Store(true)
	dir := t.TempDir()
	r := newRecorder(t, f, dir, nil)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Record(ctx, room(fmt.Sprintf("m%d", i))); !errors.Is(err, results.ErrPending) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("record while down: %v; want ErrPending", err)
	}
	if got := queued(t, dir); got != n {
		t.Fatalf("%d entries queued, want %d", got, n)
	}
	f.down.Store(false)
	run(t, r)
	waitfor.Cond(t, "every pending result is applied", func() bool { n, _ := r.Status(); return n == 0 })
	if ra := rating(t, f.db, "a"); ra.Games != n {
		t.Fatalf("%+v; want %d games", ra, n)
	}
}

// countingDB applies nothing and counts the results it is given, by room;
// failing makes it fail as a database that is down.
type countingDB struct {
	mu      sync.Mutex
	rooms   map[string]int
	failing atomic.Bool
}

func (c *countingDB) Apply(_ context.Context, r playerdb.Result) (playerdb.Applied, error) {
	if c.failing.Load() {
		return playerdb.Applied{}, fmt.Errorf("apply: %w: %v", playerdb.ErrUnavailable, errDown)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rooms == nil {
		c.rooms = map[string]int{}
	}
	c.rooms[r.Room]++
	return playerdb.Applied{Ratings: map[string]playerdb.RatingChange{}}, nil
}

func (c *countingDB) count(room string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms[room]
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "log-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDeadSegmentDrainedOnce: of a dead recorder's segment, the next one
// applies exactly the entries not marked done (a result applied before
// the death is not tried again), skips a line torn by the death, keeps an
// unreadable line in rejected/, and deletes the segment.
func TestDeadSegmentDrainedOnce(t *testing.T) {
	dir := t.TempDir()
	db := &countingDB{}
	first := newRecorder(t, db, dir, nil)
	if _, err := first.Record(ctx, room("applied")); err != nil {
		t.Fatal(err)
	}
	db.failing.Store(true)
	if _, err := first.Record(ctx, room("waiting")); !errors.Is(err, results.ErrPending) {
		t.Fatalf("%v; want ErrPending", err)
	}
	segs := segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v; want one", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// An unreadable line, then a line the process died writing.
	if _, err := f.WriteString("{garbage\n{\"v\":1,\"result\":{\"Room\":\"tor"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	first.Close() // the process dies

	db.failing.Store(false)
	second := newRecorder(t, db, dir, nil)
	if n, _ := second.Status(); n != 1 {
		t.Fatalf("a new recorder sees %d pending, want 1", n)
	}
	run(t, second)
	waitfor.Cond(t, "the dead segment is drained and deleted", func() bool { return len(segments(t, dir)) == 0 })
	if a, w := db.count("applied"), db.count("waiting"); a != 1 || w != 1 {
		t.Fatalf("applied %d times, waiting %d times; want 1 and 1", a, w)
	}
	rej, err := os.ReadDir(filepath.Join(dir, "rejected"))
	if err != nil || len(rej) != 1 {
		t.Fatalf("rejected/ holds %v (%v); want the unreadable line", rej, err)
	}
}

// TestLiveSegmentWatched: another recorder on the directory counts the
// entries a live one left pending and tries them too, so it reports the
// database failing (a dispatcher's /healthz); each result is applied
// once.
func TestLiveSegmentWatched(t *testing.T) {
	f := &flaky{db: dbtest.Open(t, dbtest.SQLite)}
	f.down.Store(true)
	dir := t.TempDir()
	owner := newRecorder(t, f, dir, nil)
	if _, err := owner.Record(ctx, room("mine")); !errors.Is(err, results.ErrPending) {
		t.Fatal(err)
	}
	other := newRecorder(t, f, dir, nil)
	run(t, other)
	waitfor.Cond(t, "the other recorder reports the pending result and the failing database", func() bool {
		n, failing := other.Status()
		return n == 1 && failing
	})
	f.down.Store(false)
	run(t, owner)
	waitfor.Cond(t, "the result is applied and marked", func() bool {
		n1, _ := owner.Status()
		n2, _ := other.Status()
		return n1 == 0 && n2 == 0 && queued(t, dir) == 0
	})
	if ra := rating(t, f.db, "a"); ra.Games != 1 {
		t.Fatalf("%+v; want one game", ra)
	}
}

// TestSegmentsRotateAndGo: a recorder that applies many results starts
// new segments as they fill and deletes those whose entries are all done.
func TestSegmentsRotateAndGo(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder(t, &countingDB{}, dir, nil)
	res := room("x")
	res.Reason = string(make([]byte, 60)) // about 500 bytes a line
	for i := range 4000 {
		res.Room = fmt.Sprintf("rot%d", i)
		if _, err := r.Record(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	if segs := segments(t, dir); len(segs) != 1 {
		t.Fatalf("segments %v; want only the current one", segs)
	}
	if n := queued(t, dir); n != 0 {
		t.Fatalf("%d pending after every result was applied", n)
	}
	r.Close()
	if segs := segments(t, dir); len(segs) != 0 {
		t.Fatalf("segments %v left by a closed recorder with nothing pending", segs)
	}
}

// TestReportedAgainWhilePending: a room reported again while its first
// report is pending leaves one entry, and once applied the recorder's
// segment goes with nothing pending.
func TestReportedAgainWhilePending(t *testing.T) {
	dir := t.TempDir()
	db := &countingDB{}
	db.failing.Store(true)
	r := newRecorder(t, db, dir, nil)
	for range 2 {
		if _, err := r.Record(ctx, room("twice")); !errors.Is(err, results.ErrPending) {
			t.Fatalf("%v; want ErrPending", err)
		}
	}
	if n := queued(t, dir); n != 1 {
		t.Fatalf("%d entries for one room reported twice", n)
	}
	db.failing.Store(false)
	if _, err := r.Record(ctx, room("twice")); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Status(); n != 0 || queued(t, dir) != 0 {
		t.Fatalf("status %d, outbox %d after the room was applied", n, queued(t, dir))
	}
	r.Close()
	if segs := segments(t, dir); len(segs) != 0 {
		t.Fatalf("segments %v left with nothing pending", segs)
	}
}
