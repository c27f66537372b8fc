package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
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
	// Client is the process's capabilities over its plugin connection.
	Client() proc.Client
	// Pid is the process id (0 for in-process fakes).
	Pid() int
	// Exited reports whether the process has exited.
	Exited() bool
	// Kill stops the process and waits for it; safe to call twice.
	Kill()
}

// Spawner starts fleet processes. The real one runs `arena KIND` as a
// go-plugin plugin (PluginSpawner); tests use in-process fakes. port is
// the port the process will be told to listen on (chosen before it starts;
// it names the process in logs).
type Spawner interface {
	Spawn(ctx context.Context, kind string, port int) (Handle, error)
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
}

// FleetConfig configures a Fleet.
type FleetConfig struct {
	Host        string // where processes bind and what answers advertise
	MaxNum      int
	IdleTimeout time.Duration
	Kinds       map[string]KindConfig
	// Start is the StartRequest template (memcache, secrets, the typed
	// options of every kind); Kind, hosts, Port and MaxNum are filled per
	// process, and the option message of another kind is cleared.
	Start proc.StartRequest
	// Games are the options of the game kinds (--game): each process of
	// one gets its GameOptions (the game's configuration JSON).
	Games map[string]*procpb.GameOptions
	// HealthEvery is the exit check period (default 250ms).
	HealthEvery time.Duration
	// StatusEvery is how often every process's Status is read to correct
	// its load, units and health (default 1s).
	StatusEvery time.Duration
	// SpawnTimeout bounds one spawn (default 15s).
	SpawnTimeout time.Duration
	// OnUnitDone, if set, is called when a room ended: a proc.RoomEnded
	// event, a room missing from a Status, or a line-protocol del naming it.
	OnUnitDone func(kind string, port int, unit string)
	// OnBackfill, if set, is called on a proc.BackfillWanted event.
	OnBackfill func(kind string, port int, room string, slots int)
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
	Load     int            `json:"load"` // Reported + line-protocol adjustments, never below 0
	Pending  int            `json:"pending,omitempty"`
	MaxNum   int            `json:"maxnum"`
	Conns    int            `json:"connections"`
	Maps     map[string]int `json:"maps,omitempty"`
	Units    int            `json:"units,omitempty"` // rooms (fight) tracked by id; filled in copies
	Started  time.Time      `json:"started"`
	LastBusy time.Time      `json:"last_busy"`

	handle   Handle
	units    map[string]time.Time // rooms hosted (assigned, not yet ended), with when they were assigned
	reserved map[string]bool      // units with a slot reserved (Pending) until their assignment answers
	reported int                  // load the process reported (answers, events, Status)
	lineLoad int                  // line-protocol add/del adjustments (seed and external servers)
	failures int
	watching bool
}

// setLoad recomputes Load from the reported load and the line-protocol
// adjustments. Callers hold the fleet's lock.
func (p *Proc) setLoad() {
	if p.reported+p.lineLoad < 0 {
		p.lineLoad = -p.reported
	}
	p.Load = p.reported + p.lineLoad
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
	// failed holds kinds whose last on-demand spawn failed: until when no
	// new spawn is tried (1 s doubling to 30 s) and why.
	failed  map[string]spawnFailure
	stopped bool
	version uint64 // bumped on every change of the table

	// stopCtx ends with the fleet: it stops the event streams.
	stopCtx context.Context
	stopFn  context.CancelFunc

	subMu sync.Mutex
	subs  map[chan FleetEvent]struct{}
	// recent are the last recentEvents events, replayed to a new
	// subscriber (a dashboard opened after a spawn failed still shows it).
	recent []FleetEvent

	wg sync.WaitGroup
}

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

// NewFleet returns a Fleet; Run starts its minimum processes and supervises.
func NewFleet(cfg FleetConfig, sp Spawner, log *slog.Logger, m *Metrics) *Fleet {
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = 250 * time.Millisecond
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Second
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
	stopCtx, stopFn := context.WithCancel(context.Background())
	return &Fleet{
		stopCtx: stopCtx, stopFn: stopFn,
		cfg: cfg, spawner: sp, log: log, metrics: m,
		procs: map[int]*Proc{}, byKind: map[string][]*Proc{}, maxnum: cfg.MaxNum,
		spawning: map[string]*spawnCall{}, dead: map[int]time.Time{},
		backoff: map[string]time.Duration{}, retryAt: map[string]time.Time{}, failed: map[string]spawnFailure{},
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
	statusEvery := time.NewTicker(f.cfg.StatusEvery)
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
			f.watchAll(ctx)
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
	if sf, ok := f.failed[kind]; ok && time.Now().Before(sf.until) {
		f.mu.Unlock()
		return nil, fmt.Errorf("spawn %s: %w: %s (next try in %v)", kind, ErrNoCapacity, sf.reason, time.Until(sf.until).Round(100*time.Millisecond))
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
// used by a process that died in the last minute. A single-port kind
// (chat) takes its port back at once: it has no other. Callers hold f.mu.
func (f *Fleet) nextPort(kind string, skip map[int]bool) (int, bool) {
	kc := f.cfg.Kinds[kind]
	now := time.Now()
	for port := kc.PortBase; port < kc.PortBase+kc.PortSpan && port <= 65535; port++ {
		if _, used := f.procs[port]; used || skip[port] {
			continue
		}
		if t, ok := f.dead[port]; ok {
			if now.Sub(t) < time.Minute && kc.PortSpan > 1 {
				continue
			}
			delete(f.dead, port)
		}
		return port, true
	}
	return 0, false
}

// startRequest is the StartRequest of a process of kind on port.
func (f *Fleet) startRequest(kind string, port, maxnum int) proc.StartRequest {
	req := f.cfg.Start
	req.Kind, req.Port, req.MaxNum = kind, port, maxnum
	if req.BindHost == "" {
		req.BindHost = f.cfg.Host
	}
	if req.AdvertiseHost == "" {
		req.AdvertiseHost = f.cfg.Host
	}
	req.Game = f.cfg.Games[kind]
	if kind != proc.KindFight {
		req.Fight = nil
		// Only rooms record results.
		if proc.Capabilities(kind) == nil || kind == proc.KindMap {
			req.DatabaseDSN, req.OutboxDir = "", ""
		}
	}
	if kind != proc.KindMap {
		req.Map = nil
	}
	if kind != proc.KindChat {
		req.Chat = nil
	}
	return req
}

// spawn picks a port for a process of kind, starts the process, and adds
// it to the table once it listens. When the port is taken it tries the
// next one with the same process.
func (f *Fleet) spawn(kind string) (*Proc, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.SpawnTimeout)
	defer cancel()
	skip := map[int]bool{}
	f.mu.Lock()
	first, ok := f.nextPort(kind, skip)
	f.mu.Unlock()
	if !ok {
		f.metrics.SpawnFailures.WithLabelValues(kind).Inc()
		return nil, fmt.Errorf("spawn %s: %w: no free port in range", kind, ErrNoCapacity)
	}
	h, err := f.spawner.Spawn(ctx, kind, first)
	if err != nil {
		// A binary that fails the handshake, exits at once or speaks
		// another protocol version: said plainly, on the dashboard too,
		// and no room is sent to it; it is tried again after a backoff.
		f.metrics.SpawnFailures.WithLabelValues(kind).Inc()
		reason := SpawnFailureReason(err)
		f.mu.Lock()
		sf := f.failed[kind]
		sf.wait = min(max(sf.wait*2, time.Second), 30*time.Second)
		sf.until, sf.reason = time.Now().Add(sf.wait), reason
		f.failed[kind] = sf
		f.mu.Unlock()
		f.log.Error("a process could not be started; no room goes to it", "kind", kind, "reason", reason, "retry_in", sf.wait.String())
		f.log.Debug("spawn error", "kind", kind, "err", err)
		f.publish(FleetEvent{Type: "spawn_failed", Kind: kind, Reason: reason})
		return nil, fmt.Errorf("spawn %s: %w: %s", kind, ErrNoCapacity, reason)
	}
	f.mu.Lock()
	delete(f.failed, kind)
	f.mu.Unlock()
	for attempt := 0; attempt < 50; attempt++ {
		f.mu.Lock()
		port, ok := f.nextPort(kind, skip)
		if !ok || f.stopped {
			f.mu.Unlock()
			break
		}
		// Reserve the port in the table as starting.
		p := &Proc{Kind: kind, Host: f.cfg.Host, Port: port, Pid: h.Pid(), State: StateStarting,
			MaxNum: f.maxnum, Started: time.Now(), LastBusy: time.Now(), handle: h, units: map[string]time.Time{}, reserved: map[string]bool{}, Maps: map[string]int{}}
		f.procs[port] = p
		f.byKind[kind] = append(f.byKind[kind], p)
		f.version++
		req := f.startRequest(kind, port, f.maxnum)
		f.mu.Unlock()

		var st proc.Started
		st, err = h.Client().Lifecycle.Start(ctx, req)
		if err == nil {
			f.mu.Lock()
			p.State = StateReady
			p.reported = st.Load
			if st.Pid != 0 {
				p.Pid = st.Pid
			}
			p.setLoad()
			f.version++
			f.mu.Unlock()
			f.metrics.Spawns.WithLabelValues(kind).Inc()
			f.metrics.SpawnSeconds.Observe(time.Since(start).Seconds())
			f.log.Info("fleet process ready", "kind", kind, "port", port, "pid", p.Pid, "took", time.Since(start).Round(time.Millisecond))
			f.publish(FleetEvent{Type: "spawn", Kind: kind, Port: port, Pid: p.Pid})
			f.watch(p)
			return p, nil
		}
		f.mu.Lock()
		f.removeLocked(p)
		f.mu.Unlock()
		if errors.Is(err, proc.ErrPortInUse) {
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

// watchAll (re)opens the event stream of every ready process that has
// none (a stream that ended while its process lives is reopened).
func (f *Fleet) watchAll(context.Context) {
	f.mu.Lock()
	var list []*Proc
	for _, p := range f.procs {
		if !p.watching && (p.State == StateReady || p.State == StateDraining) {
			list = append(list, p)
		}
	}
	f.mu.Unlock()
	for _, p := range list {
		f.watch(p)
	}
}

// watch consumes p's Watch stream in a goroutine of its own until the
// stream ends (the process exited or the fleet stopped).
func (f *Fleet) watch(p *Proc) {
	f.mu.Lock()
	if p.watching || f.stopped {
		f.mu.Unlock()
		return
	}
	p.watching = true
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	events, err := p.handle.Client().Lifecycle.Watch(ctx)
	if err != nil {
		cancel()
		f.mu.Lock()
		p.watching = false
		f.mu.Unlock()
		f.log.Debug("fleet process watch", "kind", p.Kind, "port", p.Port, "err", err)
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer cancel()
		stop := context.AfterFunc(f.stopCtx, cancel)
		defer stop()
		for ev := range events {
			f.applyEvent(p, ev)
		}
		f.mu.Lock()
		p.watching = false
		f.mu.Unlock()
	}()
}

// applyEvent applies one event of p to the table.
func (f *Fleet) applyEvent(p *Proc, ev proc.Event) {
	switch e := ev.(type) {
	case proc.RoomEnded:
		f.mu.Lock()
		if p.State == StateGone {
			f.mu.Unlock()
			return
		}
		_, known := p.units[e.Room]
		delete(p.units, e.Room)
		p.reported = e.Load
		p.setLoad()
		p.LastBusy = time.Now()
		f.version++
		f.mu.Unlock()
		if known && f.cfg.OnUnitDone != nil {
			f.cfg.OnUnitDone(p.Kind, p.Port, e.Room)
		}
	case proc.LoadChanged:
		f.mu.Lock()
		if p.State != StateGone {
			p.reported = e.Load
			p.setLoad()
			p.Conns = e.Connections
			if e.Maps != nil {
				p.Maps = e.Maps
			}
			p.LastBusy = time.Now()
			f.version++
		}
		f.mu.Unlock()
	case proc.BackfillWanted:
		if f.cfg.OnBackfill != nil {
			f.cfg.OnBackfill(p.Kind, p.Port, e.Room, e.Slots)
		}
	}
}

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

// pollStatus asks every ready process for its status and corrects the
// table from it, so a lost event never leaves a load wrong: the load, the
// players per map, and the rooms (a room the table holds that the process
// no longer hosts, and that is not being assigned, has ended). A process
// that fails three times in a row is killed (its exit is then reaped).
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
		asked := time.Now()
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := p.handle.Client().Lifecycle.Status(cctx)
		cancel()
		var ended []string
		f.mu.Lock()
		switch {
		case p.State == StateGone:
		case err != nil:
			p.failures++
			if p.failures >= 3 {
				f.log.Error("fleet process unhealthy, killing it", "kind", p.Kind, "port", p.Port, "err", err)
				go p.handle.Kill()
			}
		default:
			p.failures = 0
			ended = f.reconcileLocked(p, st, asked)
		}
		f.mu.Unlock()
		if f.cfg.OnUnitDone != nil {
			for _, room := range ended {
				f.cfg.OnUnitDone(p.Kind, p.Port, room)
			}
		}
	}
}

// reconcileLocked makes p's row agree with its Status, asked for at asked,
// and returns the rooms that ended without the table hearing of it: rooms
// assigned before asked that the Status does not list. Callers hold f.mu.
func (f *Fleet) reconcileLocked(p *Proc, st proc.Status, asked time.Time) []string {
	if p.reported != st.Load {
		f.metrics.Corrections.WithLabelValues(p.Kind).Inc()
	}
	p.reported = st.Load
	p.setLoad()
	p.Conns = st.Connections
	if p.Load > 0 {
		p.LastBusy = time.Now()
	}
	if st.Maps != nil || p.Kind == proc.KindMap {
		p.Maps = st.Maps
		if p.Maps == nil {
			p.Maps = map[string]int{}
		}
	}
	var ended []string
	if proc.Capabilities(p.Kind) != nil && p.Kind != proc.KindMap {
		hosted := make(map[string]bool, len(st.Rooms))
		for _, r := range st.Rooms {
			hosted[r] = true
		}
		for r, since := range p.units {
			if !hosted[r] && since.Before(asked) {
				delete(p.units, r)
				ended = append(ended, r)
			}
		}
	}
	f.version++
	return ended
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
	_, _ = p.handle.Client().Lifecycle.Drain(dctx, time.Now().Add(deadline))
	cancel()
	f.mu.Lock()
	f.removeLocked(p)
	f.mu.Unlock()
	p.handle.Kill()
	f.reportExit(p, reason)
}

// stopAll drains and stops every process; it returns when all are gone.
func (f *Fleet) stopAll() {
	f.stopFn()
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
			_, _ = p.handle.Client().Lifecycle.Drain(ctx, time.Now().Add(time.Second))
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

// Adjust applies a line-protocol add (delta +1) or del (delta -1) to the
// process on port: the seed's load reporting, for external and seed
// servers; processes the fleet runs report their own load. The
// adjustment adds to the load the process reports (never below 0). unit
// is the room id (fight) or map id (map) the change is about, or "": a
// del naming a room the process hosts ends that room. ErrUnknownPort if no
// process listens there.
func (f *Fleet) Adjust(port, delta int, unit string) (int, error) {
	load, kind, ended, err := f.adjust(port, delta, unit)
	if ended && f.cfg.OnUnitDone != nil {
		f.cfg.OnUnitDone(kind, port, unit)
	}
	return load, err
}

func (f *Fleet) adjust(port, delta int, unit string) (load int, kind string, ended bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[port]
	if p == nil || p.State == StateGone {
		return 0, "", false, fmt.Errorf("adjust load on %d: %w", port, ErrUnknownPort)
	}
	p.lineLoad += delta
	p.setLoad()
	p.LastBusy = time.Now()
	if unit != "" {
		switch p.Kind {
		case proc.KindMap:
			p.Maps[unit] = max(0, p.Maps[unit]+delta)
		default:
			if _, ok := p.units[unit]; ok && delta < 0 {
				delete(p.units, unit)
				ended = true
			} else if delta > 0 {
				p.units[unit] = time.Now()
			}
		}
	}
	f.version++
	return p.Load, p.Kind, ended, nil
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

// recentEvents is how many fleet events a new subscriber is replayed.
const recentEvents = 32

// Subscribe returns a channel of fleet events, starting with the last
// recentEvents, and a cancel func. Slow subscribers miss events rather
// than block the fleet.
func (f *Fleet) Subscribe() (<-chan FleetEvent, func()) {
	ch := make(chan FleetEvent, 64+recentEvents)
	f.subMu.Lock()
	for _, ev := range f.recent {
		ch <- ev
	}
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
	if len(f.recent) == recentEvents {
		f.recent = append(f.recent[:0], f.recent[1:]...)
	}
	f.recent = append(f.recent, ev)
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}
