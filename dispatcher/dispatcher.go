// Package dispatcher is arena's dispatcher: it answers the line protocol
// (get/add/del/maxnum/stat), serves the fleet's host-control service the
// hosts dial (package fleet; with --local-host and in `arena up` a host of
// its own runs in this process through the same service), serves the HTTP
// API (health, metrics, fleet, and the player flow), and wires
// matchmaking, which hands each formed room to the fleet.
package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/matchmaking/matchfn"
	"github.com/arena-game/arena/playerdb"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/httpguard"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/matchpb"
	"github.com/arena-game/arena/proto/procpb"
)

// Config is the dispatcher's configuration; cmd/arena fills it from flags.
type Config struct {
	Listen string // line protocol, default 127.0.0.1:6000
	GRPC   string // gRPC Match intake ("" = off)
	// Thrift is the seed's Thrift intake (Match.add_player; "" = off),
	// loopback only unless ThriftInsecurePublic.
	Thrift               string
	ThriftInsecurePublic bool
	HTTP                 string // HTTP and WebSocket, default :8080
	// Host is the address of the dispatcher's machine as processes there
	// advertise it: `get` answers a bare PORT for them.
	Host string
	// PublicHost is the host put in ws:// URLs given to clients for
	// processes on the dispatcher's machine (default Host).
	PublicHost string

	// HostListen is the host-control gRPC address the hosts dial
	// (default 127.0.0.1:6002; "none": only the local host).
	HostListen string
	// HostTLSCert and HostTLSKey, when set, serve HostListen with TLS.
	HostTLSCert, HostTLSKey string
	// LocalHost, when set, is a host run in this process (`arena up`,
	// --local-host), connected to the same host-control service as every
	// other host through an in-memory connection. Its Dial, FleetToken
	// and Store are filled in.
	LocalHost *host.Config
	// Lease is how long a host's heartbeats may stop before it gets no
	// new work (default 3s); HostGrace how long a host whose stream closed
	// has to come back before its processes are removed (default 1.5s).
	Lease, HostGrace time.Duration
	// OwnerLease is the period of this dispatcher's ownership of the
	// fleet under StorePrefix (default 3s): a second dispatcher on the
	// same memcached and prefix refuses to start; one started after a
	// kill -9 waits at most this long.
	OwnerLease time.Duration

	MaxNum       int
	MinProcesses int // fight processes kept running across the fleet
	MinMaps      int // map processes kept running across the fleet
	IdleTimeout  time.Duration

	FleetToken       string
	Secret           string
	BackendToken     string
	OperatorToken    string
	InsecureSeedMode bool
	// AllowedOrigins are the browser origins allowed to open arena's
	// WebSockets besides the pages' own host and localhost
	// (wsconn.OriginAllowed); every process gets them.
	AllowedOrigins []string
	GuestLogin     bool

	Memcache    []string
	StorePrefix string

	// Database is the player database's DSN, handed to fight processes
	// (never logged); OutboxDir the results outbox directory of this
	// host's processes. Both are required.
	Database  string
	OutboxDir string

	LineIdleTimeout time.Duration
	MaxConns        int
	// LineSeedWait: see LineConfig.SeedWait.
	LineSeedWait time.Duration

	// Typed options of every process of a kind (nil: defaults).
	Fight *procpb.FightOptions
	Map   *procpb.MapOptions
	Chat  *procpb.ChatOptions

	// Match configures matchmaking.
	Match matchmaking.Config
	// ProfilesFile is the matchmaking profile file (JSON or YAML; ""
	// = the built-in default profile from Match). It is read again on
	// SIGHUP and POST /v1/profiles/reload; a bad file keeps the old one.
	ProfilesFile string
	// MatchFunctions are match function plugin binaries by name
	// (--match-function NAME=PATH), started on first use and supervised.
	MatchFunctions map[string]string
	// World is the map world file ("" = built-in), for map ids and entry.
	World string

	// Bots is how many bot players to keep queueing and playing.
	Bots int

	// Games are game binaries by name (--game NAME=PATH): processes of
	// kind NAME run PATH on the local host (go-plugin, the process contract) and host the
	// rooms of every profile whose "game" is NAME; a game with no profile
	// of its own gets one named after it (the default rules). Game kinds
	// take 100 ports each from GamePortBase, in name order.
	Games        map[string]string
	GamePortBase int
	// GameConfigs are games' configuration JSON by name (from
	// --game-option NAME.KEY=VALUE; default {}).
	GameConfigs map[string][]byte
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:6000"
	}
	if c.HTTP == "" {
		c.HTTP = ":8080"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.PublicHost == "" {
		c.PublicHost = c.Host
	}
	if c.HostListen == "" {
		c.HostListen = "127.0.0.1:6002"
	}
	if (c.HostTLSCert == "") != (c.HostTLSKey == "") {
		return errors.New("config: --host-tls-cert and --host-tls-key go together")
	}
	if c.MaxNum < 1 || c.MaxNum > 1_000_000 {
		return fmt.Errorf("config: --maxnum %d out of range 1..1000000", c.MaxNum)
	}
	if c.MinProcesses < 0 || c.MinMaps < 0 {
		return errors.New("config: minimum process counts must not be negative")
	}
	if c.GamePortBase == 0 {
		c.GamePortBase = 7700
	}
	for name, path := range c.Games {
		if !playerdb.ValidProfile(name) || name == proc.KindFight || name == proc.KindMap || name == proc.KindChat || path == "" {
			return fmt.Errorf("config: --game %s=%s: a game is NAME=PATH, NAME 1 to 32 of [a-z0-9_-] other than fight, map and chat", name, path)
		}
	}
	for name := range c.GameConfigs {
		if _, ok := c.Games[name]; !ok {
			return fmt.Errorf("config: --game-option %s...: no --game %s", name, name)
		}
	}
	if c.FleetToken == "" {
		if !c.InsecureSeedMode {
			return errors.New("config: --fleet-token is required: hosts authenticate with it (or --insecure-seed-mode, which makes one up for the local host)")
		}
		c.FleetToken = auth.RandomID(24)
	}
	if len(c.Memcache) == 0 {
		return errors.New("config: --memcache is required (arena up embeds one)")
	}
	if c.Database == "" || c.OutboxDir == "" {
		return errors.New("config: --db and --outbox are required (arena up defaults them under .arena/)")
	}
	if c.Thrift != "" {
		if err := matchmaking.CheckThriftAddr(c.Thrift, c.ThriftInsecurePublic); err != nil {
			return fmt.Errorf("config: --thrift: %w", err)
		}
	}
	return nil
}

// Dispatcher wires the fleet, the line server and the HTTP API.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	players Players
	outbox  Outbox
	fleet   *fleet.Fleet
	// fleetMetrics are the fleet's metrics; the lease counts on them too.
	fleetMetrics *fleet.Metrics
	local        *host.Agent
	line         *LineServer
	metrics      *Metrics
	mux          *http.ServeMux

	signer      *auth.Signer
	mm          *matchmaking.Matchmaker
	sessions    *sessions
	playWS      *wsconn.Server
	world       *mapserver.World
	assignments *assignmentHub
	loginLimit  *ipLimiter
	// accountLimit limits logins per account name: 5 at once, then one
	// every 12 s (5 a minute), whatever the addresses they come from.
	accountLimit *ipLimiter
	// tokenMu orders token revocations with the requests that mint from a
	// checked player token (refresh, account login, map tickets, backend
	// tokens): such a request holds it shared from its revocation check
	// until it has minted, a revocation holds it while it stores the new
	// valid-from second, so no request checks before a revocation and
	// mints after it.
	tokenMu    sync.RWMutex
	grpcAddr   string
	thriftAddr string
	// backendTickets keeps backend tickets in memcached; assignLog is the
	// resumable backend-wide assignment stream (an hour).
	backendTickets *matchmaking.BackendTickets
	assignLog      *matchmaking.Journal
	director       *matchmaking.Director
	plugins        []*matchfn.Plugin

	localConn *memListener

	mu       sync.Mutex
	lineAddr string
	httpAddr string
	hostAddr string
	ready    chan struct{}
}

// Deps are a dispatcher's collaborators.
type Deps struct {
	// Store is the shared state (already prefixed); required.
	Store store.Store
	// Players is the player database (records read through the cache);
	// required.
	Players Players
	// Outbox is the results outbox this dispatcher drains, for /healthz;
	// nil when it drains none.
	Outbox Outbox
}

// New builds a dispatcher from cfg and deps.
func New(cfg Config, deps Deps, log *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Players == nil {
		return nil, errors.New("new dispatcher: a store and a player database are required")
	}
	st := deps.Store
	m := NewMetrics(proc.NewRegistry())
	if deps.Outbox != nil {
		if err := m.Registry.Register(deps.Outbox); err != nil {
			return nil, fmt.Errorf("new dispatcher: outbox metrics: %w", err)
		}
	}
	if cfg.LocalHost != nil && len(cfg.Games) > 0 {
		// Game binaries run on the local host, 100 ports each from
		// GamePortBase in name order, as many as its fight processes.
		lh := *cfg.LocalHost
		lh.Kinds = maps.Clone(lh.Kinds)
		for i, name := range slices.Sorted(maps.Keys(cfg.Games)) {
			first := cfg.GamePortBase + 100*i
			lh.Kinds[name] = host.Kind{Command: host.Command{Path: cfg.Games[name]}, FirstPort: first, LastPort: first + 99, Max: max(lh.Kinds[proc.KindFight].Max, 1)}
		}
		cfg.LocalHost = &lh
	}
	gameConfigs := map[string][]byte{}
	for name := range cfg.Games {
		gameConfigs[name] = cfg.GameConfigs[name]
		if len(gameConfigs[name]) == 0 {
			gameConfigs[name] = []byte("{}")
		}
	}
	chat := proto.Clone(cmp.Or(cfg.Chat, &procpb.ChatOptions{})).(*procpb.ChatOptions)
	if chat.OperatorToken == "" {
		chat.OperatorToken = cfg.OperatorToken
	}
	signer, err := auth.NewSigner(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("config: --secret: %w", err)
	}
	world, err := mapserver.LoadWorld(cfg.World)
	if err != nil {
		return nil, fmt.Errorf("config: --world: %w", err)
	}
	d := &Dispatcher{cfg: cfg, log: log, store: st, players: deps.Players, outbox: deps.Outbox, metrics: m, mux: http.NewServeMux(), ready: make(chan struct{}),
		signer: signer, sessions: newSessions(), world: world, assignments: newAssignmentHub(),
		loginLimit: newIPLimiter(5, 30), accountLimit: newIPLimiter(1.0/12, 5)}
	if len(cfg.MatchFunctions) > 0 {
		fm := matchfn.NewMetrics(m.Registry)
		cfg.Match.Functions = map[string]matchmaking.Function{}
		for name, path := range cfg.MatchFunctions {
			p := matchfn.NewPlugin(name, path, fm, log)
			cfg.Match.Functions[name] = p
			d.plugins = append(d.plugins, p)
		}
	}
	if cfg.ProfilesFile != "" {
		if cfg.Match.Profiles, err = matchmaking.LoadProfiles(cfg.ProfilesFile, cfg.Match.FunctionNames()); err != nil {
			return nil, fmt.Errorf("config: --profiles: %w", err)
		}
	}
	d.director = matchmaking.NewDirector(30 * time.Second)
	cfg.Match.Backfill, cfg.Match.LookupRoom = d.backfillRoom, d.lookupRoom
	if len(cfg.Games) > 0 {
		cfg.Match.Profiles = withGameProfiles(cfg.Match, cfg.Games)
	}
	d.mm, err = matchmaking.NewMatchmaker(cfg.Match, d.sessions, d.director.Handoff(d.handoffRoom), log)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d.mm.OnMatch = d.recordAssignments
	d.mm.OnExpire = d.recordExpiry
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer jcancel()
	tj, err := matchmaking.OpenJournal(jctx, st, "tickets", maxTicketTTL(cfg.Match))
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	d.backendTickets = matchmaking.NewBackendTickets(tj)
	if d.assignLog, err = matchmaking.OpenJournal(jctx, st, "assignments", AssignmentTTL); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	d.assignments.next = d.assignLog.Next()
	d.mm.RegisterMetrics(m.Registry)
	d.mm.RoomLife = d.roomTimeout() + time.Minute
	d.playWS = wsconn.NewServer(playHandler{d}, wsconn.Options{MaxMessage: playMaxMessage, SendQueue: 64, AllowedOrigins: cfg.AllowedOrigins})
	local := []string{cfg.Host}
	if ah := advertiseHost(cfg); ah != cfg.Host {
		local = append(local, ah)
	}
	d.fleetMetrics = fleet.NewMetrics(m.Registry)
	d.fleet = fleet.New(fleet.Config{
		MaxNum: cfg.MaxNum, IdleTimeout: cfg.IdleTimeout, LocalAddrs: local,
		Min:        map[string]int{proc.KindFight: cfg.MinProcesses, proc.KindMap: cfg.MinMaps},
		FleetToken: cfg.FleetToken, Lease: cfg.Lease, Grace: cfg.HostGrace, Games: gameConfigs,
		Defaults: proc.StartRequest{
			Memcache: cfg.Memcache, StorePrefix: cfg.StorePrefix, Secret: cfg.Secret,
			DatabaseDSN: cfg.Database, OutboxDir: cfg.OutboxDir, AllowedOrigins: cfg.AllowedOrigins,
			Fight: cfg.Fight, Map: cfg.Map, Chat: chat,
		},
		OnRoomEnded: d.mm.RoomEnded,
		OnBackfill:  d.mm.WantBackfill,
		OnRoomsFailed: func(p fleet.Proc, rooms []string) {
			go d.processGone(p, rooms) // placing rooms again may spawn
		},
	}, log, d.fleetMetrics)
	if cfg.LocalHost != nil {
		lc := *cfg.LocalHost
		lc.FleetToken = cfg.FleetToken
		if lc.Store == nil {
			lc.Store = st
		}
		if lc.Log == nil {
			lc.Log = log
		}
		d.localConn = newMemListener()
		lc.Dial = d.localConn.dial
		if d.local, err = host.NewAgent(lc); err != nil {
			return nil, fmt.Errorf("config: local host: %w", err)
		}
	}
	d.line = NewLineServer(LineConfig{
		FleetToken: cfg.FleetToken, InsecureSeedMode: cfg.InsecureSeedMode,
		IdleTimeout: cfg.LineIdleTimeout, MaxConns: cfg.MaxConns, SeedWait: cfg.LineSeedWait,
	}, d.fleet, log, m)
	d.routes()
	return d, nil
}

// advertiseHost is the host processes of the dispatcher's machine
// advertise: --public-host unless it is a wildcard, else --host.
func advertiseHost(cfg Config) string {
	switch cfg.PublicHost {
	case "", "0.0.0.0", "::":
		return cfg.Host
	}
	return cfg.PublicHost
}

// Fleet returns the fleet.
func (d *Dispatcher) Fleet() *fleet.Fleet { return d.fleet }

// LocalHost returns the host run in this process, or nil.
func (d *Dispatcher) LocalHost() *host.Agent { return d.local }

// Ready is closed once both listeners accept connections.
func (d *Dispatcher) Ready() <-chan struct{} { return d.ready }

// Matchmaker returns the queue.
func (d *Dispatcher) Matchmaker() *matchmaking.Matchmaker { return d.mm }

// Signer returns the cluster token signer.
func (d *Dispatcher) Signer() *auth.Signer { return d.signer }

// GRPCAddr returns the bound gRPC address ("" when off).
func (d *Dispatcher) GRPCAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.grpcAddr
}

// ThriftAddr returns the bound Thrift intake address ("" when off).
func (d *Dispatcher) ThriftAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.thriftAddr
}

// Addrs returns the bound line protocol and HTTP addresses (after Ready).
func (d *Dispatcher) Addrs() (line, httpAddr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lineAddr, d.httpAddr
}

// Run takes the fleet's lease, serves until ctx is done (or the lease is
// lost), then stops its local host's processes and returns; the processes
// of other hosts keep running.
func (d *Dispatcher) Run(ctx context.Context) error {
	lease, err := fleet.AcquireLease(ctx, fleet.LeaseConfig{Store: d.store, Prefix: d.cfg.StorePrefix,
		Period: d.cfg.OwnerLease, Addr: d.cfg.HostListen, Log: d.log, RenewFailures: d.fleetMetrics.LeaseRenewFailures})
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	previous, prevErr := hostctl.ReadStoredTable(ctx, d.store)
	lineLn, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dispatcher: listen line protocol: %w", err)
	}
	httpLn, err := net.Listen("tcp", d.cfg.HTTP)
	if err != nil {
		lineLn.Close()
		return fmt.Errorf("dispatcher: listen http: %w", err)
	}
	var grpcLn net.Listener
	if d.cfg.GRPC != "" {
		if grpcLn, err = net.Listen("tcp", d.cfg.GRPC); err != nil {
			lineLn.Close()
			httpLn.Close()
			return fmt.Errorf("dispatcher: listen grpc: %w", err)
		}
	}
	var thriftLn net.Listener
	if d.cfg.Thrift != "" {
		if thriftLn, err = net.Listen("tcp", d.cfg.Thrift); err != nil {
			lineLn.Close()
			httpLn.Close()
			if grpcLn != nil {
				grpcLn.Close()
			}
			return fmt.Errorf("dispatcher: listen thrift: %w", err)
		}
	}
	d.mu.Lock()
	if thriftLn != nil {
		d.thriftAddr = thriftLn.Addr().String()
	}
	d.lineAddr, d.httpAddr = lineLn.Addr().String(), httpLn.Addr().String()
	if grpcLn != nil {
		d.grpcAddr = grpcLn.Addr().String()
	}
	d.mu.Unlock()
	hostLn, err := d.listenHosts()
	if err != nil {
		lineLn.Close()
		httpLn.Close()
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.line.Serve(ctx, lineLn); err != nil {
			errc <- err
		}
	}()
	// The HTTP server's connections (players' sockets included) may use
	// the open-file limit less the line protocol's cap and a quarter of
	// it, at most 1,024, for the fleet's own traffic (memcached, the
	// database, gRPC, children); at least half of it, when --max-conns
	// was set high.
	files := httpguard.FileLimit()
	guard := httpguard.New("dispatcher", httpguard.Limits{
		Total: max(64, files/2, files-min(1024, files/4)-d.line.cfg.MaxConns),
	}, d.metrics.Registry, d.log)
	srv := guard.Server(httpguard.RequireJSON(d.mux))
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(guard.Listener(httpLn)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("dispatcher: http: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := lease.Keep(ctx); err != nil {
			errc <- fmt.Errorf("dispatcher: %w", err)
		}
	}()
	if prevErr == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.failLostRooms(ctx, previous)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.persistTable(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.mm.Run(ctx)
	}()
	hup := d.watchHUP()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.reloadOnHUP(ctx, hup)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Backend tickets a previous dispatcher left waiting queue again.
		if n, err := d.backendTickets.Restore(ctx, d.mm); err != nil {
			d.log.Error("backend tickets not restored", "restored", n, "err", err)
		} else if n > 0 {
			d.log.Info("backend tickets restored", "tickets", n)
		}
	}()
	if thriftLn != nil {
		ti := &matchmaking.ThriftIntake{Add: d.thriftAdd, Log: d.log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ti.Serve(ctx, thriftLn); err != nil {
				errc <- err
			}
		}()
	}
	var gs *grpc.Server
	if grpcLn != nil {
		gs = grpc.NewServer(grpc.MaxRecvMsgSize(64 << 10))
		matchpb.RegisterMatchServer(gs, &matchService{d: d})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gs.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("dispatcher: grpc: %w", err)
			}
		}()
	}
	hs, err := d.serveHosts(ctx, &wg, errc, hostLn)
	if err != nil {
		cancel()
		return err
	}
	d.log.Info("dispatcher listening", "line", d.lineAddr, "http", d.httpAddr, "grpc", d.grpcAddr, "thrift", d.thriftAddr,
		"hosts", d.HostAddr(), "local_host", d.local != nil, "maxnum", d.cfg.MaxNum)
	close(d.ready)

	fleetDone := make(chan error, 1)
	go func() { fleetDone <- d.fleet.Run(ctx) }()
	localDone := make(chan struct{})
	if d.local != nil {
		go func() { defer close(localDone); _ = d.local.Run(ctx) }()
	} else {
		close(localDone)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case runErr = <-fleetDone:
		fleetDone <- runErr
	}
	cancel()
	if gs != nil {
		go func() { time.Sleep(2 * time.Second); gs.Stop() }()
		gs.GracefulStop()
	}
	// Players' /v1/play sockets get a goodbye (close code 1012) while the
	// HTTP server stops taking requests.
	bye := make(chan struct{})
	go func() { defer close(bye); d.sessions.goodbye(3 * time.Second) }()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(shutCtx)
	shutCancel()
	<-bye
	if err := <-fleetDone; err != nil && runErr == nil {
		runErr = err
	}
	<-localDone
	hs.Stop()
	wg.Wait()
	for _, p := range d.plugins {
		p.Close()
	}
	d.writeTable(context.Background())
	d.log.Info("dispatcher stopped")
	return runErr
}

// persistTable writes the fleet table to memcached whenever it changes,
// at most every 200ms, for `arena status`, for hosts locating maps while
// the dispatcher is away, and for a restarted dispatcher.
func (d *Dispatcher) persistTable(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if v := d.fleet.Version(); v != last {
				if d.writeTable(ctx) == nil {
					last = v
				}
			}
		}
	}
}

func (d *Dispatcher) writeTable(ctx context.Context) error {
	line, httpAddr := d.Addrs()
	err := hostctl.WriteStoredTable(ctx, d.store, hostctl.StoredTable{Table: d.fleet.Table(), Dispatcher: line, HTTP: httpAddr, Pid: os.Getpid()})
	if err != nil {
		d.log.Warn("fleet table not saved to memcached", "err", err)
	}
	return err
}

// maxTicketTTL is the longest a ticket may wait: the stored tickets'
// journal keeps records that long.
func maxTicketTTL(c matchmaking.Config) time.Duration {
	ttl := c.TicketTTL
	if ttl <= 0 {
		ttl = matchmaking.DefaultTicketTTL
	}
	for _, p := range c.Profiles.Profiles {
		ttl = max(ttl, time.Duration(p.TicketTTL))
	}
	return ttl
}

// withGameProfiles returns the profiles of mc (the default one when it
// names none) plus, for every game no profile plays, a profile named after
// the game with the default rules.
func withGameProfiles(mc matchmaking.Config, games map[string]string) matchmaking.Profiles {
	ps := mc.Profiles
	if len(ps.Profiles) == 0 {
		ps = matchmaking.DefaultProfiles(mc.RoomSize, mc.WindowBase, mc.WindowPerSecond, mc.Tighten)
	}
	played := map[string]bool{}
	for _, p := range ps.Profiles {
		played[p.Game] = true
	}
	out := matchmaking.Profiles{Profiles: slices.Clone(ps.Profiles)}
	for _, name := range slices.Sorted(maps.Keys(games)) {
		if played[name] {
			continue
		}
		p := matchmaking.DefaultProfiles(mc.RoomSize, mc.WindowBase, mc.WindowPerSecond, mc.Tighten).Profiles[0]
		p.Name, p.Game = name, name
		out.Profiles = append(out.Profiles, p)
	}
	return out
}
