package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
	"github.com/arena-game/arena/proto/procpb"
)

type spawnFailure struct {
	until  time.Time
	wait   time.Duration
	reason string
}

type spawnCall struct {
	done chan struct{}
	proc *Proc
	err  error
}

// availableLocked reports whether h takes new work. Callers hold f.mu.
func (f *Fleet) availableLocked(h *host) bool {
	return h != nil && h.state == hostctl.HostConnected && !h.draining && h.sess != nil
}

// leastLoaded returns the ready process of kind on a host that takes new
// work with the lowest load+pending under MAXNUM that accept allows (nil:
// any), or nil. Ties go to the process hosting fewer map instances
// (spreading maps), then to a process on the dispatcher's own machine,
// then to the lowest host name and port (less). Without accept it is the
// top of the kind's ready heap; with one, a pass over the kind's
// processes. Callers hold f.mu.
func (f *Fleet) leastLoaded(kind string, accept func(*Proc) bool) *Proc {
	if accept == nil {
		return f.leastReadyLocked(kind)
	}
	return f.scanLeastLoaded(kind, accept)
}

// scanLeastLoaded is leastLoaded by a pass over every process of kind.
// Callers hold f.mu.
func (f *Fleet) scanLeastLoaded(kind string, accept func(*Proc) bool) *Proc {
	var best *Proc
	for _, p := range f.byKind[kind] {
		if p.State != hostctl.Ready || p.Load+p.Pending >= f.maxnum || !f.availableLocked(p.h) {
			continue
		}
		if accept != nil && !accept(p) {
			continue
		}
		if best == nil || less(p, best) {
			best = p
		}
	}
	return best
}

func less(p, q *Proc) bool {
	if a, b := p.Load+p.Pending, q.Load+q.Pending; a != b {
		return a < b
	}
	if len(p.Maps) != len(q.Maps) {
		return len(p.Maps) < len(q.Maps)
	}
	if p.Local != q.Local {
		return p.Local
	}
	if p.Host != q.Host {
		return p.Host < q.Host
	}
	return p.Port < q.Port
}

// Get answers the line protocol's get: the least-loaded ready process of
// kind, spawning one (shared by concurrent callers) on the host with the
// most free capacity when all are full. It changes no load.
func (f *Fleet) Get(ctx context.Context, kind string) (Placement, error) {
	for {
		if pl, ok := f.Pick(kind); ok {
			return pl, nil
		}
		p, err := f.spawnShared(ctx, kind, func() bool { return f.leastReadyLocked(kind) != nil })
		if err != nil {
			return Placement{}, err
		}
		if p != nil {
			return p.Placement(), nil
		}
		// A spawn finished between Pick and spawnShared: pick again.
	}
}

// Pick is Get without the spawn: the least-loaded ready process of kind
// below MAXNUM, or false. It reads the top of the kind's ready heap, so a
// call costs a lock and a copy whether or not the table changed.
func (f *Fleet) Pick(kind string) (Placement, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.leastReadyLocked(kind)
	if p == nil {
		return Placement{}, false
	}
	return p.Placement(), true
}

// pickHostLocked returns the host that should start a new process of kind:
// the one with the most free capacity for it (then fewest processes, then
// the dispatcher's own machine, then name), or nil when every host is
// full. Callers hold f.mu.
func (f *Fleet) pickHostLocked(kind string) *host {
	count := map[string]int{}
	total := map[string]int{}
	for _, p := range f.procs {
		total[p.Host]++
		if p.Kind == kind {
			count[p.Host]++
		}
	}
	var best *host
	bestFree := 0
	for _, h := range f.hosts {
		kc, ok := h.kinds[kind]
		if !ok || kc.Fixed || !f.availableLocked(h) {
			continue
		}
		free := kc.Max - count[h.name] - h.sess.spawnsInFlight(kind)
		if free <= 0 {
			continue
		}
		switch {
		case best == nil, free > bestFree:
		case free < bestFree:
			continue
		case total[h.name] != total[best.name]:
			if total[h.name] > total[best.name] {
				continue
			}
		case h.local != best.local:
			if !h.local {
				continue
			}
		case h.name > best.name:
			continue
		}
		best, bestFree = h, free
	}
	return best
}

// spawnShared joins the spawn in flight for kind or starts one. When no
// spawn is in flight and ready (called under f.mu; nil means never) says
// a process can take the work after all, because a spawn finished since
// the caller looked, it starts none and returns nil, nil: the caller
// picks again instead of spawning a second process for the same demand.
func (f *Fleet) spawnShared(ctx context.Context, kind string, ready func() bool) (*Proc, error) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return nil, ErrStopped
	}
	if sf, ok := f.failed[kind]; ok && time.Now().Before(sf.until) {
		f.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w: %s (next try in %v)", kind, ErrNoCapacity, sf.reason, time.Until(sf.until).Round(100*time.Millisecond))
	}
	call := f.spawning[kind]
	if call == nil && ready != nil && ready() {
		f.mu.Unlock()
		return nil, nil
	}
	if call == nil {
		h := f.pickHostLocked(kind)
		if h == nil {
			known := false
			for _, h := range f.hosts {
				if _, ok := h.kinds[kind]; ok {
					known = true
				}
			}
			f.mu.Unlock()
			f.metrics.SpawnFailures.WithLabelValues(kind, "no_capacity").Inc()
			if !known {
				return nil, fmt.Errorf("spawn %s: %w", kind, ErrUnknownKind)
			}
			return nil, fmt.Errorf("spawn %s: %w: every host is full", kind, ErrNoCapacity)
		}
		call = &spawnCall{done: make(chan struct{})}
		f.spawning[kind] = call
		sess := h.sess
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			call.proc, call.err = f.spawnOn(sess, kind)
			f.mu.Lock()
			delete(f.spawning, kind)
			f.mu.Unlock()
			close(call.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			return nil, call.err
		}
		return call.proc, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("spawn %s: %w", kind, ctx.Err())
	}
}

// spawnOn asks the host of sess for a process of kind and returns its row
// once it listens.
func (f *Fleet) spawnOn(sess *session, kind string) (*Proc, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*f.cfg.CommandTimeout)
	defer cancel()
	res, err := sess.spawn(ctx, kind)
	if err != nil {
		f.metrics.SpawnFailures.WithLabelValues(kind, "host").Inc()
		if errors.Is(err, ErrNoCapacity) || errors.Is(err, ErrHostAway) {
			f.log.Warn("spawn failed", "kind", kind, "host", sess.name, "err", err)
			return nil, fmt.Errorf("spawn %s on %s: %w", kind, sess.name, err)
		}
		// A binary that fails the handshake, exits at once or speaks
		// another version of the contract: said plainly, on the dashboard
		// too, no room goes to it, and it is tried again after a backoff.
		reason := err.Error()
		f.mu.Lock()
		sf := f.failed[kind]
		sf.wait = min(max(sf.wait*2, time.Second), 30*time.Second)
		sf.until, sf.reason = time.Now().Add(sf.wait), reason
		f.failed[kind] = sf
		f.mu.Unlock()
		f.log.Error("a process could not be started; no room goes to it", "kind", kind, "host", sess.name, "reason", reason, "retry_in", sf.wait.String())
		f.publish(Event{Type: "spawn_failed", Kind: kind, Host: sess.name, Reason: reason})
		return nil, fmt.Errorf("spawn %s on %s: %w: %s", kind, sess.name, ErrNoCapacity, reason)
	}
	f.mu.Lock()
	delete(f.failed, kind)
	f.mu.Unlock()
	f.mu.Lock()
	p := f.procs[Key{sess.name, int(res.GetPort())}]
	var row *Proc
	if p != nil && p.State == hostctl.Ready {
		row = p
	}
	f.mu.Unlock()
	if row == nil {
		return nil, fmt.Errorf("spawn %s on %s: %w: the process left at once", kind, sess.name, ErrNoCapacity)
	}
	f.metrics.Spawns.WithLabelValues(kind).Inc()
	f.metrics.SpawnSeconds.Observe(time.Since(start).Seconds())
	f.log.Info("fleet process ready", "kind", kind, "host", sess.name, "port", row.Port, "pid", row.Pid, "took", time.Since(start).Round(time.Millisecond))
	f.publish(Event{Type: "spawn", Kind: kind, Host: sess.name, Port: row.Port, Pid: row.Pid})
	return row, nil
}

// reserve picks the least-loaded ready process of kind that accept allows,
// spawning when none has capacity, and reserves one slot on it for unit
// (Pending+1) until release.
func (f *Fleet) reserve(ctx context.Context, kind string, accept func(*Proc) bool, unit string) (*Proc, *session, error) {
	for attempt := 0; attempt < 8; attempt++ {
		f.mu.Lock()
		if p := f.leastLoaded(kind, accept); p != nil {
			p.Pending++
			p.reserved[unit] = true
			p.LastBusy = time.Now()
			f.indexLocked(p)
			f.version++
			s := p.h.sess
			f.mu.Unlock()
			return p, s, nil
		}
		f.mu.Unlock()
		if _, err := f.spawnShared(ctx, kind, func() bool { return f.leastLoaded(kind, accept) != nil }); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, ErrNoCapacity
}

// releaseLocked drops unit's reservation on p. Callers hold f.mu.
func (f *Fleet) releaseLocked(p *Proc, unit string) {
	if p.reserved[unit] {
		delete(p.reserved, unit)
		p.Pending--
		f.indexLocked(p)
		f.version++
	}
}

// PlaceRoom hands room to the least-loaded ready process of its game
// (room.Game, default fight) with capacity, spawning one on the host with
// the most free capacity when all are full. A slot is reserved until the
// process answers with its load, so concurrent assignments never overfill
// a process.
func (f *Fleet) PlaceRoom(ctx context.Context, room proc.Room) (Placement, error) {
	kind := room.Game
	if kind == "" {
		kind = proc.KindFight
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		p, sess, err := f.reserve(ctx, kind, nil, room.ID)
		if err != nil {
			return Placement{}, fmt.Errorf("place room %s: %w", room.ID, err)
		}
		actx, cancel := context.WithTimeout(ctx, f.cfg.CommandTimeout)
		res, err := sess.do(actx, &hostpb.Command{Cmd: &hostpb.Command_AssignRoom{AssignRoom: &hostpb.AssignRoom{
			Port: int32(p.Port), Room: proc.RoomToPB(room)}}})
		cancel()
		f.mu.Lock()
		f.releaseLocked(p, room.ID)
		if err == nil && p.State != hostctl.Gone {
			p.units[room.ID] = time.Now()
			p.reported = int(res.GetLoad())
			p.setLoad()
			f.indexLocked(p)
			f.version++
		}
		pl := p.Placement()
		f.mu.Unlock()
		if err == nil {
			return pl, nil
		}
		lastErr = err
		if errors.Is(err, proc.ErrRoomExists) {
			return Placement{}, fmt.Errorf("place room %s: %w", room.ID, err)
		}
		f.log.Warn("room assignment failed, trying another process", "room", room.ID, "host", p.Host, "port", p.Port, "err", err)
	}
	return Placement{}, fmt.Errorf("place room %s: %w: %v", room.ID, ErrNoCapacity, lastErr)
}

// Backfill asks the process hosting roomID to add players to it and
// returns where it is. ErrUnknownRoom when no process hosts it; the
// process's own errors (proc.ErrRoomFull, proc.ErrUnknownRoom) otherwise.
func (f *Fleet) Backfill(ctx context.Context, roomID string, players []proc.Player) (Placement, error) {
	f.mu.Lock()
	var p *Proc
	for _, q := range f.procs {
		if _, ok := q.units[roomID]; ok {
			p = q
			break
		}
	}
	var sess *session
	if p != nil {
		if h := f.hosts[p.Host]; h != nil {
			sess = h.sess
		}
	}
	f.mu.Unlock()
	if p == nil {
		return Placement{}, fmt.Errorf("backfill %s: %w", roomID, ErrUnknownRoom)
	}
	if sess == nil {
		return Placement{}, fmt.Errorf("backfill %s: %w", roomID, ErrHostAway)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.CommandTimeout)
	defer cancel()
	res, err := sess.do(ctx, &hostpb.Command{Cmd: &hostpb.Command_Backfill{Backfill: &hostpb.Backfill{
		Port: int32(p.Port), Request: &procpb.BackfillRequest{Room: roomID, Players: proc.PlayersToPB(players)}}}})
	if err != nil {
		return Placement{}, fmt.Errorf("backfill %s: %w", roomID, err)
	}
	f.mu.Lock()
	if p.State != hostctl.Gone {
		p.reported = int(res.GetLoad())
		p.setLoad()
		f.indexLocked(p)
		f.version++
	}
	pl := p.Placement()
	f.mu.Unlock()
	return pl, nil
}

// PlaceMap answers get|map|MAPID: a map process hosting an instance of
// mapID with room for one more player (instance players and process load
// under MAXNUM). When no instance has room it asks the least-loaded map
// process with capacity to host a new instance, spawning a process when
// all are full. Unknown maps get proc.ErrUnknownMap.
func (f *Fleet) PlaceMap(ctx context.Context, mapID string) (Placement, error) {
	f.mu.Lock()
	hosting := func(p *Proc) bool {
		n, ok := p.Maps[mapID]
		return ok && n < f.maxnum
	}
	if p := f.leastLoaded(proc.KindMap, hosting); p != nil {
		pl := p.Placement()
		f.mu.Unlock()
		return pl, nil
	}
	f.mu.Unlock()
	notHosting := func(p *Proc) bool { _, ok := p.Maps[mapID]; return !ok }
	for attempt := 0; attempt < 4; attempt++ {
		p, sess, err := f.reserve(ctx, proc.KindMap, notHosting, "map:"+mapID)
		if err != nil {
			return Placement{}, fmt.Errorf("place map %s: %w", mapID, err)
		}
		hctx, cancel := context.WithTimeout(ctx, f.cfg.CommandTimeout)
		res, err := sess.do(hctx, &hostpb.Command{Cmd: &hostpb.Command_HostMap{HostMap: &hostpb.HostMap{Port: int32(p.Port), Map: mapID}}})
		cancel()
		f.mu.Lock()
		f.releaseLocked(p, "map:"+mapID)
		if err == nil && p.State != hostctl.Gone {
			if _, ok := p.Maps[mapID]; !ok {
				p.Maps[mapID] = 0
			}
			p.reported = int(res.GetLoad())
			p.setLoad()
			f.indexLocked(p)
			f.version++
		}
		pl := p.Placement()
		f.mu.Unlock()
		if err == nil {
			f.log.Info("map instance placed", "map", mapID, "host", pl.Host, "port", pl.Port)
			return pl, nil
		}
		if errors.Is(err, proc.ErrUnknownMap) {
			return Placement{}, fmt.Errorf("place map %s: %w", mapID, err)
		}
		f.log.Warn("map placement failed, trying another process", "map", mapID, "host", pl.Host, "port", pl.Port, "err", err)
	}
	return Placement{}, fmt.Errorf("place map %s: %w", mapID, ErrNoCapacity)
}

// Drain stops one process: no new work goes to it; its host stops it once
// idle or at deadline. ErrUnknownProcess if no such ready process.
func (f *Fleet) Drain(k Key, deadline time.Duration) error {
	f.mu.Lock()
	p := f.procs[k]
	if p == nil || p.State != hostctl.Ready {
		f.mu.Unlock()
		return fmt.Errorf("drain %s: %w", k, ErrUnknownProcess)
	}
	h := f.hosts[p.Host]
	if h == nil || h.sess == nil {
		f.mu.Unlock()
		return fmt.Errorf("drain %s: %w", k, ErrHostAway)
	}
	p.State = hostctl.Draining
	f.indexLocked(p)
	f.version++
	sess := h.sess
	f.mu.Unlock()
	f.publish(Event{Type: "drain", Kind: p.Kind, Host: p.Host, Port: p.Port, Pid: p.Pid, Reason: "operator"})
	sess.post(&hostpb.Command{Cmd: &hostpb.Command_DrainProcess{DrainProcess: &hostpb.DrainProcess{
		Port: int32(k.Port), DeadlineUnixMs: time.Now().Add(deadline).UnixMilli()}}})
	return nil
}

// DrainHost sends a host no new work and tells it to stop its processes
// once idle (or at deadline) and exit. ErrUnknownHost for a host not
// connected.
func (f *Fleet) DrainHost(name string, deadline time.Duration) error {
	f.mu.Lock()
	h := f.hosts[name]
	if h == nil || h.sess == nil {
		f.mu.Unlock()
		return fmt.Errorf("drain host %s: %w", name, ErrUnknownHost)
	}
	h.draining = true
	h.state = hostctl.HostDraining
	f.indexHostLocked(h)
	f.version++
	sess := h.sess
	f.mu.Unlock()
	f.log.Info("host draining", "host", name, "deadline", deadline)
	f.publish(Event{Type: "host", Host: name, State: hostctl.HostDraining.String(), Reason: "operator"})
	sess.post(&hostpb.Command{Cmd: &hostpb.Command_DrainHost{DrainHost: &hostpb.DrainHost{DeadlineUnixMs: time.Now().Add(deadline).UnixMilli()}}})
	return nil
}
