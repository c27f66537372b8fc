package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
)

// snapStore is an in-memory MultiSetter that records every snapshot it
// writes, counts its SetMulti calls, can hold a call until the test
// releases it, and can fail the items whose key contains failing.
type snapStore struct {
	*store.Memory

	mu      sync.Mutex
	calls   int
	items   int
	writes  map[string][]string // key -> values written, in order
	events  []string            // "wrote KEY=VALUE" as each call ends, and the test's own
	hold    chan struct{}       // non-nil: SetMulti waits for it (or its ctx)
	entered chan struct{}       // a held call announces itself here
	failing string
}

func newSnapStore() *snapStore {
	return &snapStore{Memory: store.NewMemory(), writes: map[string][]string{}, entered: make(chan struct{}, 64)}
}

func (s *snapStore) SetMulti(ctx context.Context, items []*store.Item) []error {
	s.mu.Lock()
	s.calls++
	s.items += len(items)
	hold, failing := s.hold, s.failing
	s.mu.Unlock()
	if hold != nil {
		s.entered <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	errs := make([]error, len(items))
	var failed bool
	for i, it := range items {
		if failing != "" && strings.Contains(it.Key, failing) {
			errs[i], failed = errors.New("set "+it.Key+": memcached is away"), true
			continue
		}
		if errs[i] = s.Memory.Set(ctx, it); errs[i] != nil {
			failed = true
			continue
		}
		s.mu.Lock()
		s.writes[it.Key] = append(s.writes[it.Key], string(it.Value))
		s.events = append(s.events, "wrote "+it.Key+"="+string(it.Value))
		s.mu.Unlock()
	}
	if !failed {
		return nil
	}
	return errs
}

// holdNext makes the next SetMulti calls wait until release.
func (s *snapStore) holdNext() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(ch)
	}
}

func (s *snapStore) written(room string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes[snapshotKey(room)]...)
}

func (s *snapStore) event(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *snapStore) stats() (calls, items int, events []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.items, append([]string(nil), s.events...)
}

type nopGame struct{}

func (nopGame) NewRoom(*Room) (Handler, error) { return nil, errors.New("not used") }

// newSnapServer is a Server on st (not listening) whose rooms the tests
// make with room and save through directly, as Room.Save does.
func newSnapServer(t *testing.T, st store.Store, log *slog.Logger) (*Server, func(id string) *Room) {
	t.Helper()
	signer, err := auth.NewSigner("snapshot-writer-test-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(nopGame{}, Config{Game: "test"}, nil, Deps{Signer: signer, Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, func(id string) *Room { return newRoom(s, RoomSpec{ID: id}, time.Now()) }
}

// saveHeld saves r's snapshot v with the store holding the write: it
// returns once the write is in flight, and release lets it finish.
func saveHeld(t *testing.T, st *snapStore, r *Room, v []byte) (release func()) {
	t.Helper()
	release = st.holdNext()
	r.snapshot.save(r, v)
	waitEntered(t, st)
	return release
}

// stopInBackground stops r's saver (with flush or not) on a goroutine,
// then runs then (if any); the channel closes when both are done.
func stopInBackground(s *Server, r *Room, flush bool, then func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		r.snapshot.stop(s.snaps, flush)
		if then != nil {
			then()
		}
		close(done)
	}()
	return done
}

func waitEntered(t *testing.T, st *snapStore) {
	t.Helper()
	select {
	case <-st.entered:
	case <-time.After(waitfor.Deadline()):
		t.Fatal("timed out waiting for a SetMulti call")
	}
}

// stopWaits reports whether a stop is waiting for r's writes.
func stopWaits(r *Room) bool {
	r.snapshot.mu.Lock()
	defer r.snapshot.mu.Unlock()
	return r.snapshot.idle != nil
}

func TestSnapshotNewestReplacesTheOneWaiting(t *testing.T) {
	st := newSnapStore()
	_, room := newSnapServer(t, st, nil)
	a := room("a")
	release := saveHeld(t, st, a, []byte("1")) // "1" is in flight
	a.snapshot.save(a, []byte("2"))
	a.snapshot.save(a, []byte("3")) // replaces "2", which waits
	release()
	waitfor.Cond(t, `"3" written`, func() bool { return len(st.written("a")) == 2 })
	if got := st.written("a"); strings.Join(got, ",") != "1,3" {
		t.Fatalf("room a's writes %q, want 1 then 3 (2 replaced while it waited)", got)
	}
}

func TestSnapshotStopWithFlushWritesTheOneWaiting(t *testing.T) {
	st := newSnapStore()
	s, room := newSnapServer(t, st, nil)
	a := room("a")
	release := saveHeld(t, st, a, []byte("1"))
	a.snapshot.save(a, []byte("2")) // waits behind "1"
	stopped := stopInBackground(s, a, true, func() { st.event("stopped") })
	waitfor.Cond(t, "stop waiting for the writes", func() bool { return stopWaits(a) })
	release()
	<-stopped
	if got := st.written("a"); strings.Join(got, ",") != "1,2" {
		t.Fatalf("room a's writes when stop returned: %q, want 1 then 2", got)
	}
	a.snapshot.save(a, []byte("3")) // after stop: nothing
	b := room("b")
	b.snapshot.save(b, []byte("b1"))
	waitfor.Cond(t, "room b written", func() bool { return len(st.written("b")) == 1 })
	_, _, events := st.stats()
	if want := "wrote gamestate:a=1,wrote gamestate:a=2,stopped,wrote gamestate:b=b1"; strings.Join(events, ",") != want {
		t.Fatalf("events %q, want %s", events, want)
	}
}

func TestSnapshotStopWithoutFlushDropsTheOneWaiting(t *testing.T) {
	st := newSnapStore()
	s, room := newSnapServer(t, st, nil)
	a := room("a")
	release := saveHeld(t, st, a, []byte("1"))
	a.snapshot.save(a, []byte("2"))
	stopped := stopInBackground(s, a, false, func() { st.event("stopped") })
	waitfor.Cond(t, "stop waiting for the write in flight", func() bool { return stopWaits(a) })
	release()
	<-stopped
	// The writer takes rooms in order: b's write comes after where a's
	// dropped snapshot was queued.
	b := room("b")
	b.snapshot.save(b, []byte("b1"))
	waitfor.Cond(t, "room b written", func() bool { return len(st.written("b")) == 1 })
	_, _, events := st.stats()
	if want := "wrote gamestate:a=1,stopped,wrote gamestate:b=b1"; strings.Join(events, ",") != want {
		t.Fatalf("events %q, want %s (the waiting 2 dropped)", events, want)
	}
}

// TestSnapshotNothingWrittenAfterStop: a room that ended stops its saver
// and then deletes its snapshot; the write in flight when it stopped (held
// by the store) must end before stop returns, or it would leave a stale
// snapshot behind the delete.
func TestSnapshotNothingWrittenAfterStop(t *testing.T) {
	st := newSnapStore()
	s, room := newSnapServer(t, st, nil)
	a := room("a")
	release := saveHeld(t, st, a, []byte("1"))
	ended := stopInBackground(s, a, false, func() {
		s.deleteSnapshot(context.Background(), "a")
		st.event("deleted")
	})
	waitfor.Cond(t, "stop waiting for the write in flight", func() bool { return stopWaits(a) })
	release()
	<-ended
	a.snapshot.save(a, []byte("2"))
	b := room("b")
	b.snapshot.save(b, []byte("b1"))
	waitfor.Cond(t, "room b written", func() bool { return len(st.written("b")) == 1 })
	if _, err := st.Get(context.Background(), snapshotKey("a")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("room a's snapshot after its end: %v, want none", err)
	}
	_, _, events := st.stats()
	if want := "wrote gamestate:a=1,deleted,wrote gamestate:b=b1"; strings.Join(events, ",") != want {
		t.Fatalf("events %q, want %s", events, want)
	}
}

// TestSnapshotManyRoomsFewSetMultiCalls: rooms that save while a write
// is in flight go out together: at most snapBatch per SetMulti call.
func TestSnapshotManyRoomsFewSetMultiCalls(t *testing.T) {
	const n = 1000
	st := newSnapStore()
	_, room := newSnapServer(t, st, nil)
	first := room("first")
	release := saveHeld(t, st, first, []byte("x"))
	rooms := make([]*Room, n)
	for i := range rooms {
		rooms[i] = room(fmt.Sprintf("r%d", i))
		rooms[i].snapshot.save(rooms[i], []byte("s"+fmt.Sprint(i)))
	}
	release()
	waitfor.Cond(t, "every room written", func() bool {
		_, _, events := st.stats()
		return len(events) == n+1
	})
	calls, _, _ := st.stats()
	if want := 1 + (n+snapBatch-1)/snapBatch; calls != want {
		t.Fatalf("%d SetMulti calls for %d rooms, want %d (batches of %d)", calls, n+1, want, snapBatch)
	}
	for i := range rooms {
		if got := st.written(rooms[i].id); len(got) != 1 || got[0] != "s"+fmt.Sprint(i) {
			t.Fatalf("room %s: writes %q", rooms[i].id, got)
		}
	}
}

// TestSnapshotFailuresLogOncePerRoom: SetMulti's per-item errors count
// and log per room: a failing room in a batch with working ones logs one
// warning however often it fails, and one line when it works again; the
// others log nothing.
func TestSnapshotFailuresLogOncePerRoom(t *testing.T) {
	st := newSnapStore()
	st.failing = "bad"
	var logs SyncLog
	s, room := newSnapServer(t, st, slog.New(slog.NewTextHandler(&logs, nil)))
	gate, bad1, bad2, good := room("gate"), room("bad1"), room("bad2"), room("good")
	saves := s.met.saves
	for i := range 3 {
		// The three save while the gate room's write is held: they go
		// out in one batch.
		release := saveHeld(t, st, gate, []byte("g"))
		for _, r := range []*Room{bad1, bad2, good} {
			r.snapshot.save(r, []byte("v"))
		}
		release()
		waitfor.Cond(t, "the batch counted", func() bool {
			return testutil.ToFloat64(saves.WithLabelValues("error")) == float64(2*(i+1)) && testutil.ToFloat64(saves.WithLabelValues("ok")) == float64(2*(i+1))
		})
	}
	if calls, _, _ := st.stats(); calls != 6 {
		t.Fatalf("%d SetMulti calls, want 6 (the gate's and the three rooms' per round)", calls)
	}
	if n := strings.Count(logs.String(), "save room state failed"); n != 2 {
		t.Fatalf("%d warnings for 6 failed writes of 2 rooms, want 2:\n%s", n, logs.String())
	}
	for _, id := range []string{"bad1", "bad2"} {
		if !strings.Contains(logs.String(), "room="+id) {
			t.Fatalf("no warning names room %s:\n%s", id, logs.String())
		}
	}
	st.mu.Lock()
	st.failing = ""
	st.mu.Unlock()
	bad1.snapshot.save(bad1, []byte("w"))
	waitfor.Cond(t, "bad1 written", func() bool { return len(st.written("bad1")) == 1 })
	if n := strings.Count(logs.String(), "room state saved again"); n != 1 || !strings.Contains(logs.String(), "room=bad1") {
		t.Fatalf("%d lines for the write that worked again, want 1 for bad1:\n%s", n, logs.String())
	}
	if got := testutil.ToFloat64(s.met.savedBytes); got != 7 {
		t.Fatalf("saved bytes %v, want 7 (6 good writes of 1 byte, then bad1's)", got)
	}
}

// TestSnapshotWriterStopsOnClose: the writer's goroutine returns when the
// server closes; a stop then waiting for a queued snapshot returns (the
// snapshot is dropped), and later saves and stops do nothing.
func TestSnapshotWriterStopsOnClose(t *testing.T) {
	st := newSnapStore()
	s, room := newSnapServer(t, st, nil)
	a, b := room("a"), room("b")
	release := saveHeld(t, st, a, []byte("1"))
	b.snapshot.save(b, []byte("1")) // waits behind a's batch
	stopped := stopInBackground(s, b, true, nil)
	waitfor.Cond(t, "b's stop waiting", func() bool { return stopWaits(b) })
	closed := make(chan struct{})
	go func() {
		_ = s.Close()
		close(closed)
	}()
	waitfor.Cond(t, "the writer told to stop", s.snaps.closing)
	release()
	<-stopped
	<-closed
	select {
	case <-s.snaps.done:
	default:
		t.Fatal("the writer's goroutine still runs after Close")
	}
	if got := st.written("b"); len(got) != 0 {
		t.Fatalf("b written after Close: %q", got)
	}
	a.snapshot.save(a, []byte("2"))
	a.snapshot.stop(s.snaps, true)
	if got := st.written("a"); strings.Join(got, ",") != "1" {
		t.Fatalf("a's writes %q, want only 1", got)
	}
}

// SyncLog is a log destination read while the server writes to it
// (exported for the package's external tests too).
type SyncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *SyncLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *SyncLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
