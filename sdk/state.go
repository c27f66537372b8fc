package sdk

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// SnapshotKey is the store key under which Room.Save keeps a room's game
// state: a host that finds it for a room whose process died may place the
// room again (the new process restores it).
func SnapshotKey(room string) string { return "gamestate:" + room }

func snapshotKey(room string) string { return SnapshotKey(room) }

// saver writes a room's snapshots in the background, newest first: at most
// one write per room is in flight, and a snapshot saved meanwhile replaces
// the one waiting. After stop it writes nothing more.
type saver struct {
	mu      sync.Mutex
	next    []byte
	writing bool
	stopped bool
	idle    chan struct{} // closed when the running writer returns
	failing bool          // the last write failed (only the writer goroutine uses it)
}

func (sv *saver) save(r *Room, b []byte) {
	sv.mu.Lock()
	if sv.stopped {
		sv.mu.Unlock()
		return
	}
	sv.next = b
	if sv.writing {
		sv.mu.Unlock()
		return
	}
	sv.writing = true
	idle := make(chan struct{})
	sv.idle = idle
	sv.mu.Unlock()
	go func() {
		defer close(idle)
		for {
			sv.mu.Lock()
			b := sv.next
			sv.next = nil
			if b == nil {
				sv.writing = false
				sv.mu.Unlock()
				return
			}
			sv.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			// The snapshot lives as long as the room could: a process that
			// takes the room over within its timeout finds it.
			ttl := time.Until(r.deadline) + time.Minute
			err := r.srv.store.Set(ctx, &store.Item{Key: snapshotKey(r.id), Value: b, TTL: ttl})
			cancel()
			// One line per room when saving starts failing and one when it
			// works again: a room saves every second or more, and a
			// memcached outage must not log that for every room.
			if err != nil {
				r.srv.met.saves.WithLabelValues("error").Inc()
				if !sv.failing {
					r.log.Warn("save room state failed; retried with the next snapshot", "bytes", len(b), "err", err)
				}
				sv.failing = true
			} else {
				r.srv.met.saves.WithLabelValues("ok").Inc()
				r.srv.met.savedBytes.Add(float64(len(b)))
				if sv.failing {
					r.log.Info("room state saved again")
				}
				sv.failing = false
			}
		}
	}()
}

// stop takes no more snapshots and waits for the write in flight, so
// that nothing is written after it returns (a room that ended deletes its
// snapshot after stop: a late write would leave a stale one behind). With
// flush the snapshot waiting is written first, else it is dropped.
func (sv *saver) stop(flush bool) {
	sv.mu.Lock()
	sv.stopped = true
	if !flush {
		sv.next = nil
	}
	idle, writing := sv.idle, sv.writing
	sv.mu.Unlock()
	if writing {
		<-idle
	}
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
