// Package fleet is the dispatcher's fleet: the hosts (`arena host`, one per
// machine, and the dispatcher's own local host), the process table keyed by
// (host, port) with typed states, placement (the least-loaded ready
// process; a new process on the host with the most free capacity), and the
// host-control gRPC service (proto/host.proto) the hosts dial.
//
// The hosts own their processes and their port space; the fleet only
// asks. A dispatcher that dies leaves every process running; a restarted
// one takes the table back from the hosts' registrations. One goroutine
// owns each host session (session.go); the table is behind one mutex so
// that placement reads it in well under a microsecond.
package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/proc"
)

// Sentinel errors of the fleet.
var (
	// ErrNoCapacity: every process is full and no host could start one.
	ErrNoCapacity = errors.New("no capacity")
	// ErrUnknownProcess: no process of the table is at that host and port.
	ErrUnknownProcess = errors.New("unknown port")
	// ErrUnknownHost: no such host in the fleet.
	ErrUnknownHost = errors.New("unknown host")
	// ErrUnknownKind: no host runs that kind.
	ErrUnknownKind = errors.New("unknown process kind")
	// ErrUnknownRoom: no process hosts that room.
	ErrUnknownRoom = errors.New("unknown room")
	// ErrStopped: the fleet is shutting down.
	ErrStopped = errors.New("fleet stopped")
	// ErrHostAway: the host's stream is down.
	ErrHostAway = errors.New("host unreachable")
)

// Key names a process: its host and port.
type Key struct {
	Host string
	Port int
}

func (k Key) String() string { return k.Host + ":" + strconv.Itoa(k.Port) }

// Placement is where work went: a process and the address players use.
type Placement struct {
	Host      string // host name
	Advertise string // the host's advertised address
	Port      int
	Local     bool // on the dispatcher's own host
}

// Addr is the advertised host:port.
func (p Placement) Addr() string { return string(p.AppendAddr(nil)) }

// AppendAddr appends Addr to b (the line server's answers, without
// allocating).
func (p Placement) AppendAddr(b []byte) []byte {
	if strings.IndexByte(p.Advertise, ':') >= 0 {
		b = append(append(append(b, '['), p.Advertise...), ']')
	} else {
		b = append(b, p.Advertise...)
	}
	return strconv.AppendInt(append(b, ':'), int64(p.Port), 10)
}

// Proc is one row of the process table. Copies are handed out; the live
// row belongs to the Fleet.
type Proc struct {
	Kind      string
	Host      string
	Advertise string
	Port      int
	Pid       int
	State     hostctl.State
	Load      int // the load the process reports plus line-protocol adjustments, never below 0
	Pending   int // slots reserved for assignments in flight
	MaxNum    int
	Conns     int
	Maps      map[string]int
	Rooms     []string // in copies: the rooms it hosts, sorted
	Local     bool
	Started   time.Time
	LastBusy  time.Time

	h        *host                // its host (the same pointer while it is in the fleet)
	units    map[string]time.Time // rooms hosted (assigned, not yet ended) and when the table learned of them
	reserved map[string]bool      // units whose assignment is in flight
	reported int                  // the load the process reported
	lineLoad int                  // line-protocol add/del (seed and external servers)
	heapPos  int                  // 1 + its place in its kind's ready heap; 0 when not in it
}

// setLoad recomputes Load. Callers hold the fleet's lock.
func (p *Proc) setLoad() {
	if p.reported+p.lineLoad < 0 {
		p.lineLoad = -p.reported
	}
	p.Load = p.reported + p.lineLoad
}

// Key returns the process's key.
func (p *Proc) Key() Key { return Key{p.Host, p.Port} }

// Placement returns where the process is.
func (p *Proc) Placement() Placement {
	return Placement{Host: p.Host, Advertise: p.Advertise, Port: p.Port, Local: p.Local}
}

// KindCap is what a host offers for one kind.
type KindCap struct {
	FirstPort, LastPort int
	Max                 int
	Fixed               bool // the host keeps it running itself (chat)
}

// HostInfo is a host as the fleet shows it.
type HostInfo struct {
	Name      string
	Advertise string
	State     hostctl.HostState
	Local     bool
	Kinds     map[string]KindCap
	Processes map[string]int // processes per kind
	Since     time.Time      // connected (or lost) since
	LastSeen  time.Time
	ClockSkew time.Duration
}

// Event is published on spawns, exits, drains and host changes.
type Event struct {
	Type   string    `json:"type"` // spawn, spawn_failed, exit, drain, maxnum, host
	Kind   string    `json:"kind,omitempty"`
	Host   string    `json:"host,omitempty"`
	Port   int       `json:"port,omitempty"`
	Pid    int       `json:"pid,omitempty"`
	Reason string    `json:"reason,omitempty"`
	MaxNum int       `json:"maxnum,omitempty"`
	State  string    `json:"state,omitempty"` // host events
	Rooms  []string  `json:"rooms,omitempty"` // rooms a dead process hosted
	Time   time.Time `json:"time"`
}

// Config configures a Fleet.
type Config struct {
	MaxNum int
	// Min processes of a kind kept running across the fleet.
	Min map[string]int
	// IdleTimeout drains processes above the minimum idle this long (0: never).
	IdleTimeout time.Duration
	// LocalAddrs are the advertised addresses of the dispatcher's own
	// machine: `get` answers a bare PORT for processes there.
	LocalAddrs []string
	// Defaults is the StartRequest template sent to hosts (secret, store
	// prefix, database, options); hosts fill kind, port, hosts and name.
	Defaults proc.StartRequest
	// Games are the configuration JSON of game kinds.
	Games map[string][]byte
	// FleetToken authenticates hosts.
	FleetToken string
	// Heartbeat is how often hosts send one (default 500ms).
	Heartbeat time.Duration
	// Lease: a host whose heartbeats stop this long gets no new work
	// (default 3s).
	Lease time.Duration
	// Grace: a host whose stream closed and that is not back this long is
	// removed with its processes (default 1.5s).
	Grace time.Duration
	// HostExpiry: a lost host (heartbeats stopped, stream not closed)
	// that is not back this long is removed (default 2m).
	HostExpiry time.Duration
	// MaxClockSkew refuses hosts whose clock is off by more (default 30s).
	MaxClockSkew time.Duration
	// HostRate and HostBurst limit the messages of one host (default 500/s, 1000).
	HostRate  float64
	HostBurst int
	// CommandTimeout bounds a command to a host (default 10s; spawns 20s).
	CommandTimeout time.Duration
	// OnRoomEnded, if set, is called when a room ended (the process told
	// its host, or its next snapshot no longer lists it, or a line del).
	OnRoomEnded func(room string)
	// OnRoomsFailed, if set, is called with the rooms of a process that
	// left the table while hosting them.
	OnRoomsFailed func(p Proc, rooms []string)
	// OnBackfill, if set, is called when a room asks for players.
	OnBackfill func(room string, slots int)
}

func (c *Config) defaults() {
	if c.MaxNum <= 0 {
		c.MaxNum = 1000
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 500 * time.Millisecond
	}
	if c.Lease <= 0 {
		c.Lease = 3 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 1500 * time.Millisecond
	}
	if c.HostExpiry <= 0 {
		c.HostExpiry = 2 * time.Minute
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = 30 * time.Second
	}
	if c.HostRate <= 0 {
		c.HostRate = 500
	}
	if c.HostBurst <= 0 {
		c.HostBurst = 1000
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 10 * time.Second
	}
}

// host is a host's live state. Its session goroutine applies its stream's
// messages; the fleet's lock guards the fields.
type host struct {
	name      string
	instance  string
	advertise string
	state     hostctl.HostState
	local     bool
	draining  bool
	kinds     map[string]KindCap
	since     time.Time
	lastSeen  time.Time
	closedAt  time.Time // stream closed (zero while open)
	skew      time.Duration
	sess      *session // nil while away
}

// Fleet is the dispatcher's fleet. All methods are safe for concurrent use.
type Fleet struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	mu       sync.Mutex
	hosts    map[string]*host
	procs    map[Key]*Proc
	byKind   map[string][]*Proc
	maxnum   int
	spawning map[string]*spawnCall
	stopped  bool
	version  uint64
	local    map[string]bool
	// ready indexes, per kind, the processes that can take work, least
	// loaded first (index.go).
	ready map[string]*readyHeap

	// failed holds kinds whose last spawn failed (a binary that fails the
	// handshake, exits at once, speaks another contract version): until
	// when no new spawn is tried (1 s doubling to 30 s) and why.
	failed map[string]spawnFailure

	subMu sync.Mutex
	subs  map[chan Event]struct{}
	// recent are the last recentEvents events, replayed to a new
	// subscriber (a dashboard opened after a spawn failed still shows it).
	recent []Event

	wg sync.WaitGroup
}

// New returns a Fleet. Serve hosts on it with Service; Run supervises.
func New(cfg Config, log *slog.Logger, m *Metrics) *Fleet {
	cfg.defaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	f := &Fleet{cfg: cfg, log: log, metrics: m,
		hosts: map[string]*host{}, procs: map[Key]*Proc{}, byKind: map[string][]*Proc{},
		maxnum: cfg.MaxNum, spawning: map[string]*spawnCall{}, local: map[string]bool{}, failed: map[string]spawnFailure{},
		ready: map[string]*readyHeap{},
		subs:  map[chan Event]struct{}{}}
	for _, a := range cfg.LocalAddrs {
		f.local[a] = true
	}
	m.MaxNum.Set(float64(cfg.MaxNum))
	m.register(f)
	return f
}

// MaxNum returns the current MAXNUM.
func (f *Fleet) MaxNum() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxnum
}

// SetMaxNum changes MAXNUM for every kind while running, and tells the
// hosts (processes read it at start).
func (f *Fleet) SetMaxNum(n int) {
	f.mu.Lock()
	f.maxnum = n
	for _, p := range f.procs {
		p.MaxNum = n
	}
	f.version++
	var sessions []*session
	for _, h := range f.hosts {
		if h.sess != nil {
			sessions = append(sessions, h.sess)
		}
	}
	f.mu.Unlock()
	f.metrics.MaxNum.Set(float64(n))
	for _, s := range sessions {
		s.notifyMaxNum(n)
	}
	f.publish(Event{Type: "maxnum", MaxNum: n})
}

// Version increases on every change of the table.
func (f *Fleet) Version() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

// Snapshot returns a copy of the table sorted by kind, host and port.
func (f *Fleet) Snapshot() []Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Proc, 0, len(f.procs))
	for _, p := range f.procs {
		out = append(out, f.copyLocked(p))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return out[i].Port < out[j].Port
	})
	return out
}

func (f *Fleet) copyLocked(p *Proc) Proc {
	c := *p
	c.MaxNum = f.maxnum
	c.Maps = make(map[string]int, len(p.Maps))
	for k, v := range p.Maps {
		c.Maps[k] = v
	}
	c.Rooms = make([]string, 0, len(p.units))
	for r := range p.units {
		c.Rooms = append(c.Rooms, r)
	}
	sort.Strings(c.Rooms)
	c.units, c.reserved, c.h, c.heapPos = nil, nil, nil, 0
	return c
}

// Hosts returns the hosts sorted by name.
func (f *Fleet) Hosts() []HostInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]HostInfo, 0, len(f.hosts))
	for _, h := range f.hosts {
		hi := HostInfo{Name: h.name, Advertise: h.advertise, State: h.state, Local: h.local, Kinds: map[string]KindCap{},
			Processes: map[string]int{}, Since: h.since, LastSeen: h.lastSeen, ClockSkew: h.skew}
		for k, c := range h.kinds {
			hi.Kinds[k] = c
		}
		for _, p := range f.procs {
			if p.Host == h.name {
				hi.Processes[p.Kind]++
			}
		}
		out = append(out, hi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the process at key.
func (f *Fleet) Lookup(k Key) (Proc, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[k]
	if p == nil {
		return Proc{}, false
	}
	return f.copyLocked(p), true
}

// resolveLocked finds the process a line-protocol HOST:PORT names: host
// "" (a bare port) means a process on the dispatcher's own machine; a
// host is matched by name or advertised address. Callers hold f.mu.
func (f *Fleet) resolveLocked(hostName string, port int) *Proc {
	if hostName != "" {
		if p := f.procs[Key{hostName, port}]; p != nil {
			return p
		}
	}
	for _, h := range f.hosts {
		if hostName == "" && !h.local || hostName != "" && h.advertise != hostName {
			continue
		}
		if p := f.procs[Key{h.name, port}]; p != nil {
			return p
		}
	}
	return nil
}

// Adjust applies a line-protocol add (delta +1) or del (delta -1) to the
// process host:port names: the seed's load reporting, for external and
// seed servers; processes the hosts run report their own load, and the
// adjustment adds to it (never below 0). unit is the room id (fight) or
// map id (map) the change is about, or "": a del naming a room the process
// hosts ends that room. ErrUnknownProcess when no process is there.
func (f *Fleet) Adjust(hostName string, port, delta int, unit string) (int, error) {
	f.mu.Lock()
	p := f.resolveLocked(hostName, port)
	if p == nil || p.State == hostctl.Gone {
		f.mu.Unlock()
		return 0, fmt.Errorf("adjust load on %s: %w", net.JoinHostPort(hostName, strconv.Itoa(port)), ErrUnknownProcess)
	}
	p.lineLoad += delta
	p.setLoad()
	p.LastBusy = time.Now()
	ended := false
	if unit != "" {
		if p.Kind == proc.KindMap {
			p.Maps[unit] = max(0, p.Maps[unit]+delta)
		} else if _, ok := p.units[unit]; ok && delta < 0 {
			delete(p.units, unit)
			ended = true
		} else if delta > 0 {
			p.units[unit] = time.Now()
		}
	}
	f.indexLocked(p)
	f.version++
	load := p.Load
	f.mu.Unlock()
	if ended && f.cfg.OnRoomEnded != nil {
		f.cfg.OnRoomEnded(unit)
	}
	return load, nil
}

// recentEvents is how many fleet events a new subscriber is replayed.
const recentEvents = 32

// Subscribe returns a channel of fleet events, starting with the last
// recentEvents, and a cancel func. Slow subscribers miss events rather
// than block the fleet.
func (f *Fleet) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64+recentEvents)
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

func (f *Fleet) publish(ev Event) {
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
