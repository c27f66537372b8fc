package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proto/hostpb"
)

// Kind is how a host runs one kind of process.
type Kind struct {
	Command Command
	// FirstPort..LastPort is the kind's port range (the host owns it).
	FirstPort, LastPort int
	// Max is the most processes of the kind at once.
	Max int
	// Fixed kinds (chat) are kept running by the host itself, Max of
	// them, respawned at once on their own port when they die.
	Fixed bool
}

// Spawner starts a process (Spawn; tests start in-process fakes).
type Spawner func(ctx context.Context, cfg SpawnConfig) (*Child, error)

// Config configures an Agent.
type Config struct {
	// Name is the host's name in the fleet (unique; default: hostname).
	Name string
	// Advertise is the host players and other hosts use for this
	// machine's processes; Bind the address processes listen on
	// (default: Advertise).
	Advertise, Bind string
	// Dispatcher is the dispatcher's host-control address (host:port).
	Dispatcher string
	// Dial, when set, makes the connection instead (the dispatcher's
	// local host dials its own service in memory).
	Dial func(ctx context.Context) (*grpc.ClientConn, error)
	// TLS, when set, secures the connection to Dispatcher.
	TLS *tls.Config
	// FleetToken authenticates the host.
	FleetToken string
	// Kinds are the kinds the host runs.
	Kinds map[string]Kind
	// Memcache, when set, overrides the dispatcher's memcached list for
	// this host's processes; OutboxDir is the results outbox directory.
	Memcache  []string
	OutboxDir string
	// Database, when set, is the results database (a DSN; never logged)
	// of this host's processes and of its outbox drain, instead of the
	// dispatcher's, which it sends over host control in its registration
	// answer.
	Database string
	// DrainOutbox makes the host apply the results its processes left in
	// OutboxDir (a process that exited while the database was away leaves
	// them there) whether or not any process runs. The dispatcher's local
	// host leaves it to the dispatcher, which drains its machine's outbox
	// itself.
	DrainOutbox bool
	// Store, when set, is the memcached store (with the fleet's prefix)
	// where the dispatcher keeps its table: maps are located from it while
	// the dispatcher is away.
	Store store.Store
	// ChildEnv is extra environment for processes (ARENA_LOG_LEVEL=...).
	ChildEnv []string
	Log      *slog.Logger
	// Spawner starts processes (default Spawn).
	Spawner Spawner
	// StatusEvery is the Status poll period (default 1s); ExitEvery the
	// exit check period (default 250ms).
	StatusEvery, ExitEvery time.Duration
	// MaxBackoff bounds the reconnect backoff (default 250ms: a restarted
	// dispatcher has its fleet back within a quarter second of listening;
	// a dial every 250 ms per host while it is away costs nothing).
	MaxBackoff time.Duration
}

// Agent is `arena host`: the go-plugin host of one machine's processes.
// It dials the dispatcher, registers everything it runs, executes the
// dispatcher's commands, reports every change, and keeps every process
// running while the dispatcher is away.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	instance string

	mu       sync.Mutex
	procs    map[int]*child // by port
	banned   map[int]time.Time
	dirty    map[int]*hostpb.ProcessInfo // snapshots to send (nil value: read the live one)
	defaults *hostpb.Registered
	maxnum   int
	draining bool
	conn     *link // the current stream, nil while away
	stopped  bool

	wake       chan struct{}
	registered chan struct{} // a registration was answered (new defaults)
	done       chan struct{} // closed when a host drain finished
	wg         sync.WaitGroup
}

// child is one process of the host.
type child struct {
	kind    string
	port    int
	pid     int
	state   hostpb.ProcessState
	load    int
	rooms   map[string]bool
	maps    map[string]int
	conns   int
	started time.Time
	reason  string
	h       *Child
	stop    context.CancelFunc // ends its watcher
	fails   int
	// seq counts the changes the process told (events) or answered
	// (assignments); touched holds, per room assigned or ended, the seq
	// of that change until a Status poll read after it. A Status answer
	// read before a change never undoes it (pollStatus).
	seq     uint64
	touched map[string]uint64
}

// noteLocked records a change the process told or answered, and the room
// it concerned ("" for none). Callers hold a.mu.
func (c *child) noteLocked(room string) {
	c.seq++
	if room != "" {
		c.touched[room] = c.seq
	}
}

// NewAgent returns an Agent; Run connects and supervises.
func NewAgent(cfg Config) (*Agent, error) {
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("new host: name: %w", err)
		}
		cfg.Name = h
	}
	if cfg.Advertise == "" {
		return nil, errors.New("new host: an advertised address is required (--advertise)")
	}
	if cfg.Bind == "" {
		cfg.Bind = cfg.Advertise
	}
	if cfg.Dispatcher == "" && cfg.Dial == nil {
		return nil, errors.New("new host: the dispatcher's address is required (--dispatcher)")
	}
	if cfg.FleetToken == "" {
		return nil, errors.New("new host: the fleet token is required (--fleet-token)")
	}
	if len(cfg.Kinds) == 0 {
		return nil, errors.New("new host: no kinds of process to run")
	}
	for name, k := range cfg.Kinds {
		if k.FirstPort < 1 || k.LastPort > 65535 || k.FirstPort > k.LastPort || k.Max < 0 {
			return nil, fmt.Errorf("new host: kind %s: bad port range %d-%d or max %d", name, k.FirstPort, k.LastPort, k.Max)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Spawner == nil {
		cfg.Spawner = Spawn
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Second
	}
	if cfg.ExitEvery <= 0 {
		cfg.ExitEvery = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 250 * time.Millisecond
	}
	return &Agent{cfg: cfg, log: cfg.Log.With("host", cfg.Name), instance: auth.RandomID(12),
		procs: map[int]*child{}, banned: map[int]time.Time{}, dirty: map[int]*hostpb.ProcessInfo{},
		wake: make(chan struct{}, 1), registered: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Name returns the host's name.
func (a *Agent) Name() string { return a.cfg.Name }

// Run connects to the dispatcher (again and again, with backoff, while it
// is away) and supervises the processes until ctx ends or a drain of the
// host finishes. On return every process is stopped.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer a.stopAll()
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.supervise(ctx) }()
	go func() { defer a.wg.Done(); a.connectLoop(ctx) }()
	if a.cfg.DrainOutbox && a.cfg.OutboxDir != "" {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.drainOutbox(ctx) }()
	}
	select {
	case <-ctx.Done():
	case <-a.done:
		a.log.Info("host drained: exiting")
	}
	cancel()
	a.wg.Wait()
	return nil
}

// markDirty queues a snapshot of the process on port for the dispatcher.
// Callers hold a.mu.
func (a *Agent) markDirtyLocked(port int, gone *hostpb.ProcessInfo) {
	a.dirty[port] = gone
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// info returns c's snapshot. Callers hold a.mu.
func (a *Agent) infoLocked(c *child) *hostpb.ProcessInfo {
	pi := &hostpb.ProcessInfo{Kind: c.kind, Port: int32(c.port), Pid: int32(c.pid), State: c.state, Load: int32(c.load),
		Connections: int32(c.conns), StartedUnixMs: c.started.UnixMilli(), Reason: c.reason,
		Addr: net.JoinHostPort(a.cfg.Advertise, strconv.Itoa(c.port))}
	for r := range c.rooms {
		pi.Rooms = append(pi.Rooms, r)
	}
	sort.Strings(pi.Rooms)
	if len(c.maps) > 0 {
		pi.Maps = make(map[string]int32, len(c.maps))
		for m, n := range c.maps {
			pi.Maps[m] = int32(n)
		}
	}
	return pi
}

// takeDirty returns the snapshots to send and clears them.
func (a *Agent) takeDirty() []*hostpb.ProcessInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*hostpb.ProcessInfo, 0, len(a.dirty))
	for port, gone := range a.dirty {
		if gone != nil {
			out = append(out, gone)
		} else if c := a.procs[port]; c != nil {
			out = append(out, a.infoLocked(c))
		}
	}
	clear(a.dirty)
	return out
}

// snapshot returns every process's snapshot.
func (a *Agent) snapshot() []*hostpb.ProcessInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*hostpb.ProcessInfo, 0, len(a.procs))
	for _, c := range a.procs {
		out = append(out, a.infoLocked(c))
	}
	clear(a.dirty)
	return out
}

// Processes returns the processes' snapshots, sorted by port (for tests
// and `arena host` logs).
func (a *Agent) Processes() []*hostpb.ProcessInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*hostpb.ProcessInfo, 0, len(a.procs))
	for _, c := range a.procs {
		out = append(out, a.infoLocked(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// Connected reports whether the host has a live stream to the dispatcher.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn != nil
}
