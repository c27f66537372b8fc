package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
	"github.com/arena-game/arena/proto/procpb"
)

// Errors of the host's own (the processes' errors are proc's).
var (
	// ErrNoCapacity: the kind is at its maximum here, or no port is free.
	ErrNoCapacity = errors.New("no capacity")
	// ErrUnknownProcess: no process on that port.
	ErrUnknownProcess = errors.New("unknown process")
	// ErrUnknownKind: the host does not run that kind.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrNoDefaults: the host has not registered with a dispatcher yet.
	ErrNoDefaults = errors.New("not registered with a dispatcher yet")
)

// deadPortBan is how long a dead process's port is not reused (a player
// may still try it); a single-port kind reuses its port at once.
const deadPortBan = time.Minute

// pickPortLocked returns a free port of kind: the lowest of its range not
// used by a process of this host, not banned, and not bound by anyone else
// right now. Callers hold a.mu.
func (a *Agent) pickPortLocked(kind string, skip map[int]bool) (int, error) {
	k := a.cfg.Kinds[kind]
	single := k.FirstPort == k.LastPort
	now := time.Now()
	for port := k.FirstPort; port <= k.LastPort; port++ {
		if a.procs[port] != nil || skip[port] {
			continue
		}
		if t, ok := a.banned[port]; ok && !single {
			if now.Sub(t) < deadPortBan {
				continue
			}
			delete(a.banned, port)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Bind, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("spawn %s: %w: no free port in %d-%d", kind, ErrNoCapacity, k.FirstPort, k.LastPort)
}

// startRequest builds the StartRequest of a process. Callers hold a.mu.
func (a *Agent) startRequestLocked(kind string, port int) (proc.StartRequest, error) {
	if a.defaults == nil {
		return proc.StartRequest{}, ErrNoDefaults
	}
	d := a.defaults.GetDefaults()
	req := proc.StartRequest{Kind: kind, BindHost: a.cfg.Bind, AdvertiseHost: a.cfg.Advertise, Port: port,
		Memcache: d.GetMemcache(), StorePrefix: d.GetStorePrefix(), Secret: d.GetSecret(),
		DatabaseDSN: d.GetDatabaseDsn(), OutboxDir: d.GetOutboxDir(), MaxNum: a.maxnum, HostName: a.cfg.Name,
		AllowedOrigins: d.GetAllowedOrigins(), Host: locator{a}}
	if len(a.cfg.Memcache) > 0 {
		req.Memcache = a.cfg.Memcache
	}
	if a.cfg.OutboxDir != "" {
		req.OutboxDir = a.cfg.OutboxDir
	}
	if a.cfg.Database != "" {
		req.DatabaseDSN = a.cfg.Database
	}
	switch kind {
	case proc.KindFight:
		req.Fight = a.defaults.GetFight()
	case proc.KindMap:
		req.Map = a.defaults.GetMap()
		req.DatabaseDSN, req.OutboxDir = "", ""
	case proc.KindChat:
		req.Chat = a.defaults.GetChat()
		req.DatabaseDSN, req.OutboxDir = "", ""
	default:
		for _, g := range a.defaults.GetGames() {
			if g.GetKind() == kind {
				req.Game = &procpb.GameOptions{ConfigJson: g.GetConfigJson()}
			}
		}
	}
	return req, nil
}

// spawn starts one process of kind and returns its snapshot once it
// listens. A port is chosen before the process starts; a port found taken
// at Start is skipped for the next.
func (a *Agent) spawn(ctx context.Context, kind string) (*hostpb.ProcessInfo, error) {
	k, ok := a.cfg.Kinds[kind]
	if !ok {
		return nil, fmt.Errorf("spawn %s: %w", kind, ErrUnknownKind)
	}
	a.mu.Lock()
	if a.draining || a.stopped {
		a.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w", kind, proc.ErrDraining)
	}
	n := 0
	for _, c := range a.procs {
		if c.kind == kind {
			n++
		}
	}
	if n >= k.Max {
		a.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w: %d of %d running", kind, ErrNoCapacity, n, k.Max)
	}
	skip := map[int]bool{}
	port, err := a.pickPortLocked(kind, skip)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	c := &child{kind: kind, port: port, state: hostpb.ProcessState_PROCESS_STATE_STARTING, started: time.Now(),
		rooms: map[string]bool{}, maps: map[string]int{}, touched: map[string]uint64{}}
	a.procs[port] = c
	a.mu.Unlock()

	fail := func(err error) (*hostpb.ProcessInfo, error) {
		a.mu.Lock()
		if a.procs[c.port] == c {
			delete(a.procs, c.port)
		}
		a.mu.Unlock()
		return nil, err
	}
	h, err := a.cfg.Spawner(ctx, SpawnConfig{Kind: kind, Command: k.Command, Tag: fmt.Sprintf("%s:%d", kind, port), Log: a.log, Env: a.cfg.ChildEnv})
	if err != nil {
		return fail(fmt.Errorf("spawn %s: %w", kind, err))
	}
	for attempt := 0; ; attempt++ {
		a.mu.Lock()
		req, rerr := a.startRequestLocked(kind, c.port)
		a.mu.Unlock()
		if rerr != nil {
			h.Kill()
			return fail(fmt.Errorf("spawn %s: %w", kind, rerr))
		}
		st, err := h.Client.Lifecycle.Start(ctx, req)
		if err == nil {
			a.mu.Lock()
			c.h, c.pid, c.load = h, h.Pid, st.Load
			if st.Pid != 0 {
				c.pid = st.Pid
			}
			c.state = hostpb.ProcessState_PROCESS_STATE_READY
			info := a.infoLocked(c)
			a.markDirtyLocked(c.port, nil)
			a.mu.Unlock()
			a.watch(c)
			a.log.Info("process ready", "kind", kind, "port", c.port, "pid", c.pid)
			return info, nil
		}
		if !errors.Is(err, proc.ErrPortInUse) || attempt >= 20 {
			h.Kill()
			return fail(fmt.Errorf("spawn %s: %w", kind, err))
		}
		// Taken since it was picked: the next port, same process.
		a.mu.Lock()
		skip[c.port] = true
		next, perr := a.pickPortLocked(kind, skip)
		if perr != nil {
			a.mu.Unlock()
			h.Kill()
			return fail(perr)
		}
		delete(a.procs, c.port)
		c.port = next
		a.procs[next] = c
		a.mu.Unlock()
	}
}

// watch consumes c's event stream in a goroutine of its own until it ends.
func (a *Agent) watch(c *child) {
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	c.stop = cancel
	h := c.h
	a.mu.Unlock()
	events, err := h.Client.Lifecycle.Watch(ctx)
	if err != nil {
		a.log.Debug("watch", "port", c.port, "err", err)
		return
	}
	go func() {
		for ev := range events {
			a.apply(c, ev)
		}
	}()
}

// apply applies one event of c to the model.
func (a *Agent) apply(c *child, ev proc.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.procs[c.port] != c {
		return
	}
	switch e := ev.(type) {
	case proc.RoomEnded:
		delete(c.rooms, e.Room)
		c.load = e.Load
		c.noteLocked(e.Room)
	case proc.LoadChanged:
		c.load, c.conns = e.Load, e.Connections
		if c.kind == proc.KindMap {
			c.maps = e.Maps
		}
		c.noteLocked("")
	case proc.BackfillWanted:
		if a.conn != nil {
			a.conn.post(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Backfill{Backfill: &hostpb.BackfillWanted{
				Port: int32(c.port), Room: e.Room, Slots: int32(e.Slots)}}})
		}
		return
	}
	a.markDirtyLocked(c.port, nil)
}

// supervise checks exits and polls Status until ctx ends, and keeps the
// fixed kinds running.
func (a *Agent) supervise(ctx context.Context) {
	exits := time.NewTicker(a.cfg.ExitEvery)
	defer exits.Stop()
	status := time.NewTicker(a.cfg.StatusEvery)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-exits.C:
			a.reapExited()
			a.ensureFixed(ctx)
		case <-status.C:
			a.pollStatus(ctx)
		}
	}
}

// reapExited removes processes that exited and reports them gone.
func (a *Agent) reapExited() {
	a.mu.Lock()
	var gone []*child
	for _, c := range a.procs {
		if c.h != nil && c.h.Exited() {
			gone = append(gone, c)
		}
	}
	for _, c := range gone {
		a.removeLocked(c, "exited")
	}
	a.mu.Unlock()
	for _, c := range gone {
		a.log.Warn("process exited", "kind", c.kind, "port", c.port, "pid", c.pid, "rooms", len(c.rooms))
		c.h.Kill()
	}
}

// removeLocked drops c, bans its port a while (not a single-port kind's)
// and queues its last snapshot (gone). Callers hold a.mu.
func (a *Agent) removeLocked(c *child, reason string) {
	if a.procs[c.port] != c {
		return
	}
	delete(a.procs, c.port)
	if c.stop != nil {
		c.stop()
	}
	a.banned[c.port] = time.Now()
	c.state, c.reason = hostpb.ProcessState_PROCESS_STATE_GONE, reason
	a.markDirtyLocked(c.port, a.infoLocked(c))
	if a.draining && len(a.procs) == 0 {
		a.finishDrainLocked()
	}
}

// ensureFixed keeps the fixed kinds' processes running (once the host
// knows how to start them).
func (a *Agent) ensureFixed(ctx context.Context) {
	for kind, k := range a.cfg.Kinds {
		if !k.Fixed {
			continue
		}
		a.mu.Lock()
		n := 0
		for _, c := range a.procs {
			if c.kind == kind {
				n++
			}
		}
		ok := a.defaults != nil && !a.draining && !a.stopped
		a.mu.Unlock()
		for ; ok && n < k.Max; n++ {
			if _, err := a.spawn(ctx, kind); err != nil {
				a.log.Warn("cannot keep a fixed process running", "kind", kind, "err", err)
				break
			}
		}
	}
}

// pollStatus asks every ready process for its status and corrects the
// model from it (a lost event never leaves a load wrong); three failures
// in a row kill a process.
func (a *Agent) pollStatus(ctx context.Context) {
	a.mu.Lock()
	list := make([]*child, 0, len(a.procs))
	asked := make([]uint64, 0, len(a.procs))
	for _, c := range a.procs {
		if c.h != nil && c.state != hostpb.ProcessState_PROCESS_STATE_STARTING {
			list = append(list, c)
			asked = append(asked, c.seq)
		}
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.h.Client.Lifecycle.Status(cctx)
			cancel()
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.procs[c.port] != c {
				return
			}
			if err != nil {
				c.fails++
				if c.fails >= 3 {
					a.log.Error("process unhealthy, killing it", "kind", c.kind, "port", c.port, "err", err)
					go c.h.Kill()
				}
				return
			}
			c.fails = 0
			changed := reconcileLocked(c, st, asked[i])
			if changed {
				a.markDirtyLocked(c.port, nil)
			}
		}()
	}
	wg.Wait()
}

// reconcileLocked makes c's model what its Status answer st says, as
// far as nothing newer is known: the answer was read at some point after
// c.seq was asked, and an event or an assignment may have come in since
// (on a loaded machine a Status call can take long). Rooms assigned or
// ended since keep what the model knows; the load, connections and maps
// are the model's when anything came in since (every event and answer
// carries the whole load). It reports whether the model changed. Callers
// hold a.mu.
func reconcileLocked(c *child, st proc.Status, asked uint64) bool {
	rooms := make(map[string]bool, len(st.Rooms))
	for _, r := range st.Rooms {
		rooms[r] = true
	}
	for r, seq := range c.touched {
		switch {
		case seq <= asked:
			delete(c.touched, r) // the answer was read after it: it knows
		case c.rooms[r]:
			rooms[r] = true
		default:
			delete(rooms, r)
		}
	}
	changed := len(rooms) != len(c.rooms)
	for r := range rooms {
		changed = changed || !c.rooms[r]
	}
	c.rooms = rooms
	if c.seq != asked {
		return changed
	}
	changed = changed || c.load != st.Load || c.conns != st.Connections
	c.load, c.conns = st.Load, st.Connections
	if c.kind == proc.KindMap && !sameMaps(c.maps, st.Maps) {
		c.maps, changed = st.Maps, true
	}
	return changed
}

func sameMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// byPort returns the live process on port.
func (a *Agent) byPort(port int) (*child, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.procs[port]
	if c == nil || c.h == nil {
		return nil, fmt.Errorf("process on port %d: %w", port, ErrUnknownProcess)
	}
	return c, nil
}

// assignRoom hosts a room on the process on port; the model learns the
// room before the answer goes back.
func (a *Agent) assignRoom(ctx context.Context, port int, room proc.Room) (int, error) {
	c, err := a.byPort(port)
	if err != nil {
		return 0, err
	}
	if c.h.Client.Rooms == nil {
		return 0, fmt.Errorf("assign room: %w: a %s process hosts no rooms", proc.ErrBadOptions, c.kind)
	}
	load, err := c.h.Client.Rooms.AssignRoom(ctx, room)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	if a.procs[port] == c {
		c.rooms[room.ID] = true
		c.load = load
		c.noteLocked(room.ID)
		a.markDirtyLocked(port, nil)
	}
	a.mu.Unlock()
	return load, nil
}

// backfill adds players to a room of the process on port.
func (a *Agent) backfill(ctx context.Context, port int, room string, players []proc.Player) (int, error) {
	c, err := a.byPort(port)
	if err != nil {
		return 0, err
	}
	if c.h.Client.Rooms == nil {
		return 0, fmt.Errorf("backfill: %w", proc.ErrUnknownRoom)
	}
	load, err := c.h.Client.Rooms.Backfill(ctx, room, players)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	if a.procs[port] == c {
		c.load = load
		c.noteLocked("")
		a.markDirtyLocked(port, nil)
	}
	a.mu.Unlock()
	return load, nil
}

// hostMap makes the process on port host an instance of mapID.
func (a *Agent) hostMap(ctx context.Context, port int, mapID string) (int, error) {
	c, err := a.byPort(port)
	if err != nil {
		return 0, err
	}
	if c.h.Client.Maps == nil {
		return 0, fmt.Errorf("host map: %w", proc.ErrUnknownMap)
	}
	load, err := c.h.Client.Maps.HostMap(ctx, mapID)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	if a.procs[port] == c {
		if _, ok := c.maps[mapID]; !ok {
			c.maps[mapID] = 0
		}
		c.load = load
		c.noteLocked("")
		a.markDirtyLocked(port, nil)
	}
	a.mu.Unlock()
	return load, nil
}

// drainProcess drains the process on port and stops it once idle or at
// deadline.
func (a *Agent) drainProcess(port int, deadline time.Time) error {
	a.mu.Lock()
	c := a.procs[port]
	if c == nil {
		a.mu.Unlock()
		return fmt.Errorf("drain %d: %w", port, ErrUnknownProcess)
	}
	if c.state == hostpb.ProcessState_PROCESS_STATE_DRAINING {
		a.mu.Unlock()
		return nil
	}
	c.state = hostpb.ProcessState_PROCESS_STATE_DRAINING
	a.markDirtyLocked(port, nil)
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if c.h != nil {
			ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
			_, _ = c.h.Client.Lifecycle.Drain(ctx, deadline)
			cancel()
		}
		a.mu.Lock()
		a.removeLocked(c, "drained")
		a.mu.Unlock()
		if c.h != nil {
			c.h.Kill()
		}
		a.log.Info("process drained", "kind", c.kind, "port", c.port)
	}()
	return nil
}

// drainHost takes no new work, drains every process, and ends Run once
// none is left (or at deadline).
func (a *Agent) drainHost(deadline time.Time) {
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return
	}
	a.draining = true
	ports := make([]int, 0, len(a.procs))
	for p := range a.procs {
		ports = append(ports, p)
	}
	if len(ports) == 0 {
		a.finishDrainLocked()
	}
	a.mu.Unlock()
	a.log.Info("host draining", "processes", len(ports), "deadline", time.Until(deadline).Round(time.Second))
	for _, p := range ports {
		_ = a.drainProcess(p, deadline)
	}
}

// finishDrainLocked ends Run after a host drain. Callers hold a.mu.
func (a *Agent) finishDrainLocked() {
	select {
	case <-a.done:
	default:
		close(a.done)
	}
}

// Drain drains the host (as the dispatcher's drain host command does).
func (a *Agent) Drain(deadline time.Duration) { a.drainHost(time.Now().Add(deadline)) }

// stopAll stops every process (the host is exiting).
func (a *Agent) stopAll() {
	a.mu.Lock()
	a.stopped = true
	list := make([]*child, 0, len(a.procs))
	for _, c := range a.procs {
		list = append(list, c)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range list {
		if c.h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = c.h.Client.Lifecycle.Drain(ctx, time.Now().Add(time.Second))
			cancel()
			c.h.Kill()
		}()
	}
	wg.Wait()
}
