package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/proc"
)

// AssignRoom hands room to the least-loaded ready process of its game
// (room.Game: a --game kind, "" = fight) with capacity, spawning one when
// all are full. A slot is reserved until the
// process answers with its load, so concurrent assignments never overfill
// a process. It returns the process's table row.
func (f *Fleet) AssignRoom(ctx context.Context, room proc.Room) (Proc, error) {
	kind := room.Game
	if kind == "" {
		kind = proc.KindFight
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		p, err := f.reserve(ctx, kind, nil, room.ID)
		if err != nil {
			return Proc{}, fmt.Errorf("assign room %s: %w", room.ID, err)
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		load, err := p.handle.Client().Rooms.AssignRoom(actx, room)
		cancel()
		f.mu.Lock()
		f.releaseLocked(p, room.ID)
		if err == nil && p.State != StateGone {
			p.units[room.ID] = time.Now()
			p.reported = load
			p.setLoad()
			f.version++
		}
		row := *p
		f.mu.Unlock()
		if err == nil {
			row.handle, row.units, row.reserved = nil, nil, nil
			return row, nil
		}
		lastErr = err
		if errors.Is(err, proc.ErrRoomExists) {
			return Proc{}, fmt.Errorf("assign room %s: %w", room.ID, err)
		}
		f.log.Warn("room assignment failed, trying another process", "room", room.ID, "port", p.Port, "err", err)
	}
	return Proc{}, fmt.Errorf("assign room %s: %w: %v", room.ID, ErrNoCapacity, lastErr)
}

// ErrUnknownRoom: no process of the table hosts that room.
var ErrUnknownRoom = errors.New("no process hosts that room")

// Backfill adds players to the running room roomID on the process that
// hosts it (the rooms plugin's Backfill) and returns that process's row.
// The game tells the room's players who joined.
func (f *Fleet) Backfill(ctx context.Context, roomID string, players []proc.Player) (Proc, error) {
	f.mu.Lock()
	var host *Proc
	for _, p := range f.byKind[proc.KindFight] {
		if _, ok := p.units[roomID]; ok && p.State != StateGone {
			host = p
			break
		}
	}
	f.mu.Unlock()
	if host == nil {
		return Proc{}, fmt.Errorf("backfill room %s: %w", roomID, ErrUnknownRoom)
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	load, err := host.handle.Client().Rooms.Backfill(bctx, roomID, players)
	cancel()
	if err != nil {
		return Proc{}, fmt.Errorf("backfill room %s: %w", roomID, err)
	}
	f.mu.Lock()
	if host.State != StateGone {
		host.reported = load
		host.setLoad()
		f.version++
	}
	row := *host
	f.mu.Unlock()
	row.handle, row.units, row.reserved = nil, nil, nil
	return row, nil
}

// reserve picks the least-loaded ready process of kind that accept allows,
// spawning when none has capacity, and reserves one slot on it for unit
// (Pending+1) until releaseLocked.
func (f *Fleet) reserve(ctx context.Context, kind string, accept func(*Proc) bool, unit string) (*Proc, error) {
	for attempt := 0; attempt < 8; attempt++ {
		f.mu.Lock()
		if p := f.leastLoaded(kind, accept); p != nil {
			p.Pending++
			p.reserved[unit] = true
			p.LastBusy = time.Now()
			f.mu.Unlock()
			return p, nil
		}
		f.mu.Unlock()
		if _, err := f.spawnShared(ctx, kind); err != nil {
			return nil, err
		}
	}
	return nil, ErrNoCapacity
}

// PlaceMap answers get|map|MAPID: the port of a map process hosting an
// instance of mapID with room for one more player (instance players and
// process load under MAXNUM). When no instance has room it asks the
// least-loaded map process with capacity to host a new instance, spawning a
// process when all are full. Unknown maps get proc.ErrUnknownMap.
func (f *Fleet) PlaceMap(ctx context.Context, mapID string) (int, error) {
	// An instance with room, least loaded first.
	f.mu.Lock()
	hosting := func(p *Proc) bool {
		n, ok := p.Maps[mapID]
		return ok && n < f.maxnum
	}
	if p := f.leastLoaded(proc.KindMap, hosting); p != nil {
		port := p.Port
		f.mu.Unlock()
		return port, nil
	}
	f.mu.Unlock()
	// A new instance on the least-loaded process with capacity.
	notHosting := func(p *Proc) bool { _, ok := p.Maps[mapID]; return !ok }
	for attempt := 0; attempt < 4; attempt++ {
		p, err := f.reserve(ctx, proc.KindMap, notHosting, "map:"+mapID)
		if err != nil {
			return 0, fmt.Errorf("place map %s: %w", mapID, err)
		}
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		load, err := p.handle.Client().Maps.HostMap(hctx, mapID)
		cancel()
		f.mu.Lock()
		f.releaseLocked(p, "map:"+mapID)
		if err == nil {
			if _, ok := p.Maps[mapID]; !ok {
				p.Maps[mapID] = 0
			}
			p.reported = load
			p.setLoad()
			f.version++
		}
		port := p.Port
		f.mu.Unlock()
		if err == nil {
			f.log.Info("map instance placed", "map", mapID, "port", port)
			return port, nil
		}
		if errors.Is(err, proc.ErrUnknownMap) {
			return 0, fmt.Errorf("place map %s: %w", mapID, err)
		}
		f.log.Warn("map placement failed, trying another process", "map", mapID, "port", port, "err", err)
	}
	return 0, fmt.Errorf("place map %s: %w", mapID, ErrNoCapacity)
}

// releaseLocked drops unit's reservation on p. Callers hold f.mu.
func (f *Fleet) releaseLocked(p *Proc, unit string) {
	if p.reserved[unit] {
		delete(p.reserved, unit)
		p.Pending--
	}
}
