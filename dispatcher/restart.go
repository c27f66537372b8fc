package dispatcher

import (
	"context"
	"errors"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
)

// takeoverWait bounds how long a restarted dispatcher waits for the hosts
// its predecessor knew before it fails the rooms nobody hosts any more.
const takeoverWait = 15 * time.Second

// failLostRooms runs once after a start: it waits until every host of the
// table the previous dispatcher left in memcached has registered again (or
// takeoverWait passed), then marks failed the room records of rooms that
// table listed and no process hosts now (their process died while no
// dispatcher was watching), so no record says "playing" for an hour.
// Rooms that ended meanwhile were recorded by their process and are left
// alone.
func (d *Dispatcher) failLostRooms(ctx context.Context, old hostctl.StoredTable) {
	rooms := map[string]bool{}
	hosts := map[string]bool{}
	for _, p := range old.Processes {
		for _, r := range p.RoomIDs {
			rooms[r] = true
		}
		hosts[p.Host] = true
	}
	if len(rooms) == 0 {
		return
	}
	deadline := time.NewTimer(takeoverWait)
	defer deadline.Stop()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for waiting := true; waiting; {
		back := 0
		for _, h := range d.fleet.Hosts() {
			if hosts[h.Name] && h.State == hostctl.HostConnected {
				back++
			}
		}
		if back == len(hosts) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			waiting = false
		case <-t.C:
		}
	}
	for _, p := range d.fleet.Snapshot() {
		for _, r := range p.Rooms {
			delete(rooms, r)
		}
	}
	for room := range rooms {
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := records.UpdateRoom(uctx, d.store, room, func(r *records.Room) error {
			if r.State == records.RoomEnded || r.State == records.RoomFailed {
				return errNoChange
			}
			r.State, r.Reason, r.Ended = records.RoomFailed, "process_gone", time.Now().Unix()
			return nil
		})
		cancel()
		switch {
		case err == nil:
			d.log.Warn("room failed: its process is gone since the previous dispatcher", "room", room)
		case errors.Is(err, errNoChange), errors.Is(err, store.ErrNotFound):
		default:
			d.log.Warn("room not marked failed", "room", room, "err", err)
		}
	}
}

// errNoChange leaves a record as it is.
var errNoChange = errors.New("no change")
