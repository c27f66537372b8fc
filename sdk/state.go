package sdk

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/store"
)

// SnapshotKey is the store key under which Room.Save keeps a room's game
// state: a host that finds it for a room whose process died may place the
// room again (the new process restores it).
func SnapshotKey(room string) string { return "gamestate:" + room }

func snapshotKey(room string) string { return SnapshotKey(room) }

// snapBatch bounds the snapshots one store.SetMulti carries: a batch
// shares one write timeout (snapWriteTimeout), and the memcached client
// pipelines 128 sets per round trip.
const snapBatch = 256

// snapWriteTimeout bounds one batch's write.
const snapWriteTimeout = 2 * time.Second

// snapWriter is a Server's one writer of room snapshots. Rooms hand it
// their newest snapshot through saver.save, which never blocks and never
// starts a goroutine; its goroutine takes every room waiting and writes
// their snapshots with store.SetMulti (pipelined memcached sets) in
// batches of up to snapBatch, then takes what arrived meanwhile.
//
// The hand-off is a mailbox of rooms (internal/mailbox, policy Reject)
// beside one slot per room (saver.next): a room is queued once, and a
// snapshot saved while its previous one waits replaces it in the slot,
// so the queue holds at most one entry per room hosted. A room queues
// itself through a reservation, so it is never refused for lack of room;
// that bound is the number of rooms.
//
// Batches are written one at a time, so a room has at most one write in
// flight.
type snapWriter struct {
	st    store.Store
	ok    prometheus.Counter
	fail  prometheus.Counter
	bytes prometheus.Counter

	box  *mailbox.Mailbox[*saver]
	quit chan struct{} // closed by close
	done chan struct{} // closed when run returns
	once sync.Once
}

func newSnapWriter(st store.Store, met *metrics) *snapWriter {
	return &snapWriter{
		st:    st,
		ok:    met.saves.WithLabelValues("ok"),
		fail:  met.saves.WithLabelValues("error"),
		bytes: met.savedBytes,
		box:   mailbox.New[*saver](1, mailbox.Reject),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// saver is a room's slot in the server's snapshot writer.
type saver struct {
	mu      sync.Mutex
	next    []byte // the snapshot waiting, nil when none
	queued  bool   // the room is in the writer's mailbox
	writing bool   // the room's snapshot is in the batch being written
	stopped bool
	idle    chan struct{} // made by a stop that waits; closed when nothing waits or is in flight

	// Set by the first save; read by the writer.
	r   *Room
	key string

	// Owned by the writer goroutine.
	inflight []byte
	failing  bool // the last write failed
}

// save hands b to the server's writer as r's newest snapshot, replacing
// one that waits. It never blocks. After stop it does nothing.
func (sv *saver) save(r *Room, b []byte) {
	w := r.srv.snaps
	sv.mu.Lock()
	if sv.stopped {
		sv.mu.Unlock()
		return
	}
	sv.next = b
	if sv.queued {
		sv.mu.Unlock()
		return
	}
	if sv.r == nil {
		sv.r, sv.key = r, snapshotKey(r.id)
	}
	sv.queued = true
	sv.mu.Unlock()
	if w.box.Reserve().Post(sv) != nil {
		// The writer is gone (the server closed): nothing is written.
		sv.mu.Lock()
		sv.queued, sv.next = false, nil
		sv.mu.Unlock()
	}
}

// stop takes no more snapshots and waits for the write in flight, so
// that nothing is written after it returns (a room that ended deletes its
// snapshot after stop: a late write would leave a stale one behind). With
// flush the snapshot waiting is written first, else it is dropped. It
// does not wait past the write's timeout, nor for a writer that the
// server's Close stopped (what waits then is dropped).
func (sv *saver) stop(w *snapWriter, flush bool) {
	if w == nil {
		return // no store: nothing was saved
	}
	sv.mu.Lock()
	sv.stopped = true
	if !flush {
		sv.next = nil // the writer skips the room if it is queued
	}
	if !sv.busy() {
		sv.mu.Unlock()
		return
	}
	if sv.idle == nil {
		sv.idle = make(chan struct{})
	}
	idle := sv.idle
	sv.mu.Unlock()
	select {
	case <-idle:
	case <-w.done:
	}
}

// busy reports whether a write of the room is in flight or waits (sv.mu
// held).
func (sv *saver) busy() bool { return sv.writing || (sv.queued && sv.next != nil) }

// settle wakes a stop waiting for the room once nothing is in flight or
// waits (sv.mu held).
func (sv *saver) settle() {
	if sv.idle != nil && !sv.busy() {
		close(sv.idle)
		sv.idle = nil
	}
}

// run is the writer's goroutine: until close, it takes the rooms waiting
// and writes them in batches.
func (w *snapWriter) run() {
	defer close(w.done)
	var (
		taken []*saver
		batch []*saver
		items []*store.Item
		vals  []store.Item
	)
	for {
		select {
		case <-w.box.Ready():
		case <-w.quit:
		}
		if w.closing() {
			for _, sv := range w.box.Close() {
				sv.drop()
			}
			return
		}
		taken = w.box.Take(taken)
		for i := 0; i < len(taken); {
			if w.closing() {
				// Close stops at a batch's end; the rest is dropped.
				for _, sv := range taken[i:] {
					sv.drop()
				}
				break
			}
			batch = batch[:0]
			for ; i < len(taken) && len(batch) < snapBatch; i++ {
				if sv := taken[i]; sv.begin() {
					batch = append(batch, sv)
				}
			}
			if len(batch) > 0 {
				items, vals = w.write(batch, items, vals)
			}
		}
	}
}

// begin takes the room's waiting snapshot for the batch being built; it
// reports false when there is none (a stop without flush dropped it).
func (sv *saver) begin() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.queued = false
	if sv.next == nil {
		sv.settle()
		return false
	}
	sv.inflight, sv.next = sv.next, nil
	sv.writing = true
	return true
}

// drop forgets the room's waiting snapshot (the writer is closing).
func (sv *saver) drop() {
	sv.mu.Lock()
	sv.queued, sv.next = false, nil
	sv.settle()
	sv.mu.Unlock()
}

// write stores batch's snapshots with one SetMulti, counts and logs each
// room's result and then ends the rooms' writes. items and vals are
// reused between batches.
func (w *snapWriter) write(batch []*saver, items []*store.Item, vals []store.Item) ([]*store.Item, []store.Item) {
	now := time.Now()
	vals = slices.Grow(vals[:0], len(batch))[:len(batch)]
	items = items[:0]
	for i, sv := range batch {
		// The snapshot lives as long as the room could: a process that
		// takes the room over within its timeout finds it.
		vals[i] = store.Item{Key: sv.key, Value: sv.inflight, TTL: sv.r.deadline.Sub(now) + time.Minute}
		items = append(items, &vals[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapWriteTimeout)
	errs := store.SetMulti(ctx, w.st, items)
	cancel()
	var saved int
	for i, sv := range batch {
		var err error
		if errs != nil {
			err = errs[i]
		}
		// One line per room when saving starts failing and one when it
		// works again: a room saves every second or more, and a memcached
		// outage must not log that for every room.
		if err != nil {
			w.fail.Inc()
			if !sv.failing {
				sv.r.log.Warn("save room state failed; retried with the next snapshot", "bytes", len(sv.inflight), "err", err)
			}
			sv.failing = true
		} else {
			w.ok.Inc()
			saved += len(sv.inflight)
			if sv.failing {
				sv.r.log.Info("room state saved again")
			}
			sv.failing = false
		}
	}
	w.bytes.Add(float64(saved))
	for _, sv := range batch {
		sv.mu.Lock()
		sv.writing, sv.inflight = false, nil
		sv.settle()
		sv.mu.Unlock()
	}
	clear(vals)
	clear(items)
	return items, vals
}

func (w *snapWriter) closing() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

// close stops the writer after the batch in flight (what waits is
// dropped) and waits for its goroutine to return.
func (w *snapWriter) close() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

// loadSnapshot returns the saved state of room id, or nil.
func (s *Server) loadSnapshot(ctx context.Context, id string) []byte {
	if s.store == nil {
		return nil
	}
	it, err := s.store.Get(ctx, snapshotKey(id))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("read room state", "room", id, "err", err)
		}
		return nil
	}
	return it.Value
}

func (s *Server) deleteSnapshot(ctx context.Context, id string) {
	if s.store == nil {
		return
	}
	if err := s.store.Delete(ctx, snapshotKey(id)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("delete room state", "room", id, "err", err)
	}
}
