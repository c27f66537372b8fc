package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/fleet"
)

// Process states in the table.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateDraining = "draining"
	StateGone     = "gone"
)

// Sentinel errors of the fleet.
var (
	// ErrNoCapacity: every process is full and no new one could be spawned.
	ErrNoCapacity = errors.New("no capacity")
	// ErrUnknownPort: no process of the table listens on that port.
	ErrUnknownPort = errors.New("unknown port")
	// ErrUnknownKind: the kind is not configured.
	ErrUnknownKind = errors.New("unknown process kind")
	// ErrStopped: the fleet is shutting down.
	ErrStopped = errors.New("fleet stopped")
)

// Handle is a running fleet process as the Fleet sees it.
type Handle interface {
	// Process is the RPC client of the process.
	Process() fleet.Process
	// Pid is the process id (0 for in-process fakes).
	Pid() int
	// Exited reports whether the process has exited.
	Exited() bool
	// Kill stops the process and waits for it; safe to call twice.
	Kill()
}

// Spawner starts fleet processes. The real one runs `arena KIND` as a
// go-plugin plugin (PluginSpawner); tests use in-process fakes.
type Spawner interface {
	Spawn(ctx context.Context, kind string) (Handle, error)
}

// KindConfig is how the fleet runs one kind of process.
type KindConfig struct {
	PortBase int
	// PortSpan is how many ports from PortBase the kind may use (default 1000).
	PortSpan int
	// Min processes kept running (started at boot, replaced when they die).
	Min int
	// Fixed kinds (chat) are never spawned on demand nor stopped when idle.
	Fixed bool
	// Options are passed to every process of the kind in StartConfig.
	Options map[string]string
}

// FleetConfig configures a Fleet.
type FleetConfig struct {
	Host        string // where processes bind and what answers advertise
	MaxNum      int
	IdleTimeout time.Duration
	Kinds       map[string]KindConfig
	// Start is the StartConfig template (memcache, secrets, dispatcher
	// address); Kind, Host, Port, MaxNum and Options are filled per process.
	Start fleet.StartConfig
	// HealthEvery is the exit and health check period (default 250ms).
	HealthEvery time.Duration
	// SpawnTimeout bounds one spawn (default 15s).
	SpawnTimeout time.Duration
	// OnUnitDone, if set, is called when a fight process reports del for a
	// room (the room ended).
	OnUnitDone func(kind string, port int, unit string)
	// OnExit, if set, is called when a process leaves the table, with the
	// rooms it still hosted.
	OnExit func(p Proc, units []string)
}

// Proc is one row of the process table. Copies are handed out; the live
// row is owned by the Fleet.
type Proc struct {
	Kind     string         `json:"kind"`
	Host     string         `json:"host"`
	Port     int            `json:"port"`
	Pid      int            `json:"pid"`
	State    string         `json:"state"`
	Load     int            `json:"load"`
	Pending  int            `json:"pending,omitempty"`
	MaxNum   int            `json:"maxnum"`
	Conns    int            `json:"connections"`
	Maps     map[string]int `json:"maps,omitempty"`
	Units    int            `json:"units,omitempty"` // rooms (fight) tracked by id; filled in copies
	Started  time.Time      `json:"started"`
	LastBusy time.Time      `json:"last_busy"`

	handle   Handle
	units    map[string]bool // fight: room ids reported with add
	reserved map[string]bool // units with a slot reserved (Pending) until their add arrives
	failures int
}

// FleetEvent is published on spawns, exits and drains.
type FleetEvent struct {
	Type   string    `json:"type"` // spawn, exit, drain, maxnum
	Kind   string    `json:"kind,omitempty"`
	Port   int       `json:"port,omitempty"`
	Pid    int       `json:"pid,omitempty"`
	Reason string    `json:"reason,omitempty"`
	MaxNum int       `json:"maxnum,omitempty"`
	Units  []string  `json:"units,omitempty"` // rooms a dead fight process hosted
	Time   time.Time `json:"time"`
}

// Fleet is the dispatcher's process table and supervisor. All methods are
// safe for concurrent use.
type Fleet struct {
	cfg     FleetConfig
	spawner Spawner
	log     *slog.Logger
	metrics *Metrics

	mu       sync.Mutex
	procs    map[int]*Proc // by port
	byKind   map[string][]*Proc
	maxnum   int
	spawning map[string]*spawnCall
	dead     map[int]time.Time // ports of processes that died, not reused for a while
	backoff  map[string]time.Duration
	retryAt  map[string]time.Time
	stopped  bool
	version  uint64 // bumped on every change of the table

	subMu sync.Mutex
	subs  map[chan FleetEvent]struct{}

	wg sync.WaitGroup
}

type spawnCall struct {
	done chan struct{}
	proc *Proc
	err  error
}

// NewFleet returns a Fleet; Run starts its minimum processes and supervises.
func NewFleet(cfg FleetConfig, sp Spawner, log *slog.Logger, m *Metrics) *Fleet {
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = 250 * time.Millisecond
	}
	if cfg.SpawnTimeout <= 0 {
		cfg.SpawnTimeout = 15 * time.Second
	}
	if cfg.MaxNum <= 0 {
		cfg.MaxNum = 1000
	}
	for k, kc := range cfg.Kinds {
		if kc.PortSpan <= 0 {
			kc.PortSpan = 1000
		}
		cfg.Kinds[k] = kc
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Fleet{
		cfg: cfg, spawner: sp, log: log, metrics: m,
		procs: map[int]*Proc{}, byKind: map[string][]*Proc{}, maxnum: cfg.MaxNum,
		spawning: map[string]*spawnCall{}, dead: map[int]time.Time{},
		backoff: map[string]time.Duration{}, retryAt: map[string]time.Time{},
		subs: map[chan FleetEvent]struct{}{},
	}
}

// Run starts the minimum processes of every kind, then supervises (exits,
// health, idle drain) until ctx is done, and then stops every process. It
// returns once all processes are gone.
func (f *Fleet) Run(ctx context.Context) error {
	defer f.stopAll()
	f.ensureMinimum(ctx)
	tick := time.NewTicker(f.cfg.HealthEvery)
	defer tick.Stop()
	statusEvery := time.NewTicker(2 * time.Second)
	defer statusEvery.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			f.reapExited()
			f.ensureMinimum(ctx)
		case <-statusEvery.C:
			f.pollStatus(ctx)
			f.drainIdle(ctx)
		}
	}
}

// MaxNum returns the current MAXNUM.
func (f *Fleet) MaxNum() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxnum
}

// SetMaxNum changes MAXNUM for every kind while running.
func (f *Fleet) SetMaxNum(n int) {
	f.mu.Lock()
	f.maxnum = n
	for _, p := range f.procs {
		p.MaxNum = n
	}
	f.version++
	f.mu.Unlock()
	f.metrics.MaxNum.Set(float64(n))
	f.publish(FleetEvent{Type: "maxnum", MaxNum: n})
}

// Version increases on every change of the table.
func (f *Fleet) Version() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

// leastLoaded returns the ready process of kind with the lowest load+pending
// under MAXNUM, or nil. Ties go to the process hosting fewer map instances
// (spreading maps over processes), then to the lowest port. Callers hold
// f.mu.
func (f *Fleet) leastLoaded(kind string, accept func(*Proc) bool) *Proc {
	var best *Proc
	for _, p := range f.byKind[kind] {
		if p.State != StateReady || p.Load+p.Pending >= f.maxnum {
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
	return p.Port < q.Port
}

// Get answers the line protocol's get: the port of the least-loaded ready
// process of kind, spawning one (shared by concurrent callers) when all are
// full. It does not change any load.
func (f *Fleet) Get(ctx context.Context, kind string) (int, error) {
	f.mu.Lock()
	if p := f.leastLoaded(kind, nil); p != nil {
		port := p.Port
		f.mu.Unlock()
		return port, nil
	}
	f.mu.Unlock()
	p, err := f.spawnShared(ctx, kind)
	if err != nil {
		return 0, err
	}
	return p.Port, nil
}

// spawnShared joins the spawn in flight for kind or starts one.
func (f *Fleet) spawnShared(ctx context.Context, kind string) (*Proc, error) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return nil, ErrStopped
	}
	kc, ok := f.cfg.Kinds[kind]
	if !ok {
		f.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w", kind, ErrUnknownKind)
	}
	if kc.Fixed && len(f.byKind[kind]) > 0 {
		f.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w: fixed kind is full", kind, ErrNoCapacity)
	}
	call := f.spawning[kind]
	if call == nil {
		call = &spawnCall{done: make(chan struct{})}
		f.spawning[kind] = call
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			call.proc, call.err = f.spawn(kind)
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

// nextPort returns the lowest port of kind's range not in the table and not
// used by a process that died in the last minute. Callers hold f.mu.
func (f *Fleet) nextPort(kind string, skip map[int]bool) (int, bool) {
	kc := f.cfg.Kinds[kind]
	now := time.Now()
	for port := kc.PortBase; port < kc.PortBase+kc.PortSpan && port <= 65535; port++ {
		if _, used := f.procs[port]; used || skip[port] {
			continue
		}
		if t, ok := f.dead[port]; ok {
			if now.Sub(t) < time.Minute {
				continue
			}
			delete(f.dead, port)
		}
		return port, true
	}
	return 0, false
}

// spawn starts one process of kind and adds it to the table once it
// listens. It tries the next port when one is taken.
func (f *Fleet) spawn(kind string) (*Proc, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.SpawnTimeout)
	defer cancel()
	h, err := f.spawner.Spawn(ctx, kind)
	if err != nil {
		f.metrics.SpawnFailures.WithLabelValues(kind).Inc()
		return nil, fmt.Errorf("spawn %s: %w: %v", kind, ErrNoCapacity, err)
	}
	skip := map[int]bool{}
	for attempt := 0; attempt < 50; attempt++ {
		f.mu.Lock()
		port, ok := f.nextPort(kind, skip)
		if !ok || f.stopped {
			f.mu.Unlock()
			break
		}
		// Reserve the port in the table as starting.
		p := &Proc{Kind: kind, Host: f.cfg.Host, Port: port, Pid: h.Pid(), State: StateStarting,
			MaxNum: f.maxnum, Started: time.Now(), LastBusy: time.Now(), handle: h, units: map[string]bool{}, reserved: map[string]bool{}, Maps: map[string]int{}}
		f.procs[port] = p
		f.byKind[kind] = append(f.byKind[kind], p)
		f.version++
		sc := f.cfg.Start
		sc.Kind, sc.Host, sc.Port, sc.MaxNum = kind, f.cfg.Host, port, f.maxnum
		sc.Options = f.cfg.Kinds[kind].Options
		f.mu.Unlock()

		if t, ok := h.(interface{ SetTag(string) }); ok {
			t.SetTag(fmt.Sprintf("%s:%d", kind, port))
		}
		_, err = h.Process().Start(ctx, sc)
		if err == nil {
			f.mu.Lock()
			p.State = StateReady
			f.version++
			f.mu.Unlock()
			f.metrics.Spawns.WithLabelValues(kind).Inc()
			f.metrics.SpawnSeconds.Observe(time.Since(start).Seconds())
			f.log.Info("fleet process ready", "kind", kind, "port", port, "pid", h.Pid(), "took", time.Since(start).Round(time.Millisecond))
			f.publish(FleetEvent{Type: "spawn", Kind: kind, Port: port, Pid: h.Pid()})
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.afterSpawn(p) }()
			return p, nil
		}
		f.mu.Lock()
		f.removeLocked(p)
		f.mu.Unlock()
		if errors.Is(err, fleet.ErrPortInUse) {
			skip[port] = true
			f.log.Debug("fleet port taken, trying the next", "kind", kind, "port", port)
			continue
		}
		break
	}
	h.Kill()
	f.metrics.SpawnFailures.WithLabelValues(kind).Inc()
	if err == nil {
		err = errors.New("no free port in range")
	}
	return nil, fmt.Errorf("spawn %s: %w: %v", kind, ErrNoCapacity, err)
}

// afterSpawn is a hook for work that follows a spawn (none yet).
func (f *Fleet) afterSpawn(*Proc) {}

// removeLocked drops p from the table. Callers hold f.mu.
func (f *Fleet) removeLocked(p *Proc) {
	if f.procs[p.Port] == p {
		delete(f.procs, p.Port)
	}
	list := f.byKind[p.Kind]
	for i, q := range list {
		if q == p {
			f.byKind[p.Kind] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	p.State = StateGone
	f.version++
}

// reapExited removes processes that exited and reports them.
func (f *Fleet) reapExited() {
	var gone []*Proc
	f.mu.Lock()
	for _, p := range f.procs {
		if p.State != StateStarting && p.handle.Exited() {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		f.removeLocked(p)
		f.dead[p.Port] = time.Now()
	}
	f.mu.Unlock()
	for _, p := range gone {
		f.reportExit(p, "exited")
	}
}

func (f *Fleet) reportExit(p *Proc, reason string) {
	var units []string
	for u := range p.units {
		units = append(units, u)
	}
	sort.Strings(units)
	f.metrics.Exits.WithLabelValues(p.Kind, reason).Inc()
	f.log.Warn("fleet process gone", "kind", p.Kind, "port", p.Port, "pid", p.Pid, "reason", reason, "rooms", len(units))
	f.publish(FleetEvent{Type: "exit", Kind: p.Kind, Port: p.Port, Pid: p.Pid, Reason: reason, Units: units})
	if f.cfg.OnExit != nil {
		row := *p
		row.handle, row.units, row.reserved = nil, nil, nil
		f.cfg.OnExit(row, units)
	}
	go p.handle.Kill() // reap resources; a no-op for an exited process
}

// ensureMinimum spawns processes until every kind has its minimum. A kind
// whose spawn fails is retried with exponential backoff (up to 30s); the
// other kinds are unaffected.
func (f *Fleet) ensureMinimum(ctx context.Context) {
	for kind, kc := range f.cfg.Kinds {
		f.mu.Lock()
		wait := f.retryAt[kind]
		f.mu.Unlock()
		if time.Now().Before(wait) {
			continue
		}
		for {
			f.mu.Lock()
			n := 0
			for _, p := range f.byKind[kind] {
				if p.State == StateReady || p.State == StateStarting {
					n++
				}
			}
			stopped := f.stopped
			f.mu.Unlock()
			if stopped || n >= kc.Min {
				break
			}
			if _, err := f.spawnShared(ctx, kind); err != nil {
				f.mu.Lock()
				b := f.backoff[kind]*2 + time.Second
				if b > 30*time.Second {
					b = 30 * time.Second
				}
				f.backoff[kind] = b
				f.retryAt[kind] = time.Now().Add(b)
				f.mu.Unlock()
				f.log.Error("fleet cannot keep its minimum; retrying", "kind", kind, "min", kc.Min, "retry_in", b, "err", err)
				break
			}
			f.mu.Lock()
			f.backoff[kind] = 0
			f.mu.Unlock()
		}
	}
}

// pollStatus asks every ready process for its status; a process that fails
// three times in a row is killed (its exit is then reaped).
func (f *Fleet) pollStatus(ctx context.Context) {
	f.mu.Lock()
	var list []*Proc
	for _, p := range f.procs {
		if p.State == StateReady || p.State == StateDraining {
			list = append(list, p)
		}
	}
	f.mu.Unlock()
	for _, p := range list {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := p.handle.Process().Status(cctx)
		cancel()
		f.mu.Lock()
		if err != nil {
			p.failures++
			if p.failures >= 3 && p.State != StateGone {
				f.log.Error("fleet process unhealthy, killing it", "kind", p.Kind, "port", p.Port, "err", err)
				go p.handle.Kill()
			}
		} else {
			p.failures = 0
			p.Conns = st.Connections
			if p.Kind == fleet.KindMap {
				// Instances the process hosts but nobody counted yet.
				for m := range st.Maps {
					if _, ok := p.Maps[m]; !ok {
						p.Maps[m] = 0
					}
				}
			}
		}
		f.mu.Unlock()
	}
}

// drainIdle stops processes above the minimum that had no load for
// IdleTimeout.
func (f *Fleet) drainIdle(ctx context.Context) {
	if f.cfg.IdleTimeout <= 0 {
		return
	}
	now := time.Now()
	var victims []*Proc
	f.mu.Lock()
	for kind, kc := range f.cfg.Kinds {
		if kc.Fixed {
			continue
		}
		ready := 0
		for _, p := range f.byKind[kind] {
			if p.State == StateReady {
				ready++
			}
		}
		for _, p := range f.byKind[kind] {
			if ready <= kc.Min {
				break
			}
			if p.State == StateReady && p.Load == 0 && p.Pending == 0 && now.Sub(p.LastBusy) >= f.cfg.IdleTimeout {
				p.State = StateDraining
				f.version++
				ready--
				victims = append(victims, p)
			}
		}
	}
	f.mu.Unlock()
	for _, p := range victims {
		f.log.Info("fleet draining idle process", "kind", p.Kind, "port", p.Port)
		f.publish(FleetEvent{Type: "drain", Kind: p.Kind, Port: p.Port, Pid: p.Pid, Reason: "idle"})
		f.wg.Add(1)
		go func(p *Proc) {
			defer f.wg.Done()
			f.stopProc(ctx, p, "idle")
		}(p)
	}
}

// Drain stops one process by port: no new work goes to it; it is stopped
// once idle (or after deadline). ErrUnknownPort if no such process.
func (f *Fleet) Drain(port int, deadline time.Duration) error {
	f.mu.Lock()
	p := f.procs[port]
	if p == nil || p.State != StateReady {
		f.mu.Unlock()
		return fmt.Errorf("drain %d: %w", port, ErrUnknownPort)
	}
	p.State = StateDraining
	f.version++
	f.mu.Unlock()
	f.publish(FleetEvent{Type: "drain", Kind: p.Kind, Port: p.Port, Pid: p.Pid, Reason: "operator"})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
		defer cancel()
		f.stopProcDeadline(ctx, p, "drained", deadline)
	}()
	return nil
}

func (f *Fleet) stopProc(ctx context.Context, p *Proc, reason string) {
	f.stopProcDeadline(ctx, p, reason, 5*time.Second)
}

func (f *Fleet) stopProcDeadline(ctx context.Context, p *Proc, reason string, deadline time.Duration) {
	dctx, cancel := context.WithTimeout(ctx, deadline+time.Second)
	_, _ = p.handle.Process().Drain(dctx, time.Now().Add(deadline))
	cancel()
	f.mu.Lock()
	f.removeLocked(p)
	f.mu.Unlock()
	p.handle.Kill()
	f.reportExit(p, reason)
}

// stopAll drains and stops every process; it returns when all are gone.
func (f *Fleet) stopAll() {
	f.mu.Lock()
	f.stopped = true
	list := make([]*Proc, 0, len(f.procs))
	for _, p := range f.procs {
		list = append(list, p)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func(p *Proc) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = p.handle.Process().Drain(ctx, time.Now().Add(time.Second))
			cancel()
			p.handle.Kill()
		}(p)
	}
	wg.Wait()
	f.wg.Wait()
	f.mu.Lock()
	for _, p := range list {
		f.removeLocked(p)
	}
	f.mu.Unlock()
}

// Adjust applies add (delta +1) or del (delta -1) to the process on port;
// load never goes below 0. unit is the room id (fight) or map id (map) the
// change is about, or "". ErrUnknownPort if no process listens there.
func (f *Fleet) Adjust(port, delta int, unit string) (int, error) {
	load, kind, err := f.adjust(port, delta, unit)
	if err == nil && delta < 0 && unit != "" && kind == fleet.KindFight && f.cfg.OnUnitDone != nil {
		f.cfg.OnUnitDone(kind, port, unit)
	}
	return load, err
}

func (f *Fleet) adjust(port, delta int, unit string) (int, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[port]
	if p == nil || p.State == StateGone {
		return 0, "", fmt.Errorf("adjust load on %d: %w", port, ErrUnknownPort)
	}
	p.Load += delta
	if p.Load < 0 {
		p.Load = 0
	}
	p.LastBusy = time.Now()
	if unit != "" {
		switch p.Kind {
		case fleet.KindMap:
			n := p.Maps[unit] + delta
			if n < 0 {
				n = 0
			}
			p.Maps[unit] = n
		default:
			if delta > 0 && p.reserved[unit] {
				delete(p.reserved, unit)
				p.Pending--
			}
			if delta > 0 {
				p.units[unit] = true
			} else {
				delete(p.units, unit)
			}
		}
	}
	f.version++
	return p.Load, p.Kind, nil
}

// Snapshot returns a copy of the table sorted by kind and port.
func (f *Fleet) Snapshot() []Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Proc, 0, len(f.procs))
	for _, p := range f.procs {
		c := *p
		c.MaxNum = f.maxnum
		c.Units = len(p.units)
		c.Maps = make(map[string]int, len(p.Maps))
		for k, v := range p.Maps {
			c.Maps[k] = v
		}
		c.handle, c.units, c.reserved = nil, nil, nil
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// Subscribe returns a channel of fleet events and a cancel func. Slow
// subscribers miss events rather than block the fleet.
func (f *Fleet) Subscribe() (<-chan FleetEvent, func()) {
	ch := make(chan FleetEvent, 64)
	f.subMu.Lock()
	f.subs[ch] = struct{}{}
	f.subMu.Unlock()
	return ch, func() {
		f.subMu.Lock()
		delete(f.subs, ch)
		f.subMu.Unlock()
	}
}

func (f *Fleet) publish(ev FleetEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	f.subMu.Lock()
	defer f.subMu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}
