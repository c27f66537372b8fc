// Package bots runs server-side bot players: real clients of arena's
// player API that log in (POST /v1/login with "bot": true and the
// operator token), queue on the dispatcher's /v1/play socket, join the
// fight server they are matched to with their room ticket, play (walk,
// attack a living opponent now and then, slower than a person can) and
// queue again. They keep a lone person from waiting forever: `arena up
// --bots N` and the dashboard's bot control (POST /v1/bots) steer a Fleet.
//
// Bots are visible as bots: their tokens and records carry the bot flag,
// their names start with "bot-" and their photo is the robot avatar.
package bots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxBots is the most bots one Fleet runs.
const MaxBots = 1000

// DefaultPhoto is the bots' photo: the robot avatar served with the pages.
const DefaultPhoto = "/static/img/bot.svg"

// Errors of SetCount and Run.
var (
	ErrBadCount = fmt.Errorf("bot count must be 0..%d", MaxBots)
	ErrStopped  = errors.New("bot fleet stopped")
	ErrRunning  = errors.New("bot fleet already running")
)

// Config configures a Fleet. Zero fields take the defaults shown.
type Config struct {
	// BaseURL is the dispatcher's HTTP address, http://host:port (required).
	BaseURL string
	// OperatorToken is sent as the bearer of bot logins; the dispatcher
	// gives bot identities only to operators.
	OperatorToken string
	// Count is how many bots to keep playing at start (0..MaxBots).
	Count int
	// Mode is the queue mode the bots join ("" = the default mode).
	Mode string
	// Photo is the bots' photo (DefaultPhoto; a path is made absolute
	// against BaseURL).
	Photo string
	// Think is how often a bot decides in a fight (300ms).
	Think time.Duration
	// AttackMin and AttackMax bound a bot's time between attacks
	// (1.2s and 2.6s): slower than the fight server's cooldown, so a
	// person can win.
	AttackMin, AttackMax time.Duration
	// Rest is the mean pause between a result and the next queue (1s).
	Rest time.Duration
	// MaxFight bounds one fight from the bot's side (15m; the fight
	// server's room timeout normally ends a room first).
	MaxFight time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Photo == "" {
		c.Photo = DefaultPhoto
	}
	if c.Think <= 0 {
		c.Think = 300 * time.Millisecond
	}
	if c.AttackMin <= 0 {
		c.AttackMin = 1200 * time.Millisecond
	}
	if c.AttackMax < c.AttackMin {
		c.AttackMax = max(c.AttackMin, 2600*time.Millisecond)
	}
	if c.Rest <= 0 {
		c.Rest = time.Second
	}
	if c.MaxFight <= 0 {
		c.MaxFight = 15 * time.Minute
	}
	return c
}

// Status is a snapshot of a Fleet, as GET /v1/bots shows it.
type Status struct {
	// Target is how many bots the fleet keeps; Running how many run now.
	Target  int `json:"target"`
	Running int `json:"running"`
	// States counts running bots by state (starting, queued, fighting,
	// resting, backoff).
	States map[string]int `json:"states"`
	Games  int64          `json:"games"`
	Wins   int64          `json:"wins"`
	Errors int64          `json:"errors"`
	// LastError is the most recent failure, without tokens.
	LastError string    `json:"last_error,omitempty"`
	Bots      []BotInfo `json:"bots"`
}

// Fleet keeps a number of bots playing. Run owns the bots; SetCount and
// Status may be called from any goroutine, before, during or after Run.
type Fleet struct {
	cfg    Config
	client *client
	log    *slog.Logger

	setc chan int
	done chan struct{}

	mu      sync.Mutex
	target  int
	bots    map[int]*bot // running, by slot
	lastErr string
	running bool
	stopped bool

	games, wins, errs atomic.Int64

	metGames  *prometheus.CounterVec
	metErrors prometheus.Counter
	metBots   *prometheus.Desc
}

// New checks cfg and returns a Fleet that starts playing when Run is
// called.
func New(cfg Config) (*Fleet, error) {
	cfg = cfg.withDefaults()
	if cfg.Count < 0 || cfg.Count > MaxBots {
		return nil, fmt.Errorf("new bot fleet: %w", ErrBadCount)
	}
	cl, err := newClient(cfg.BaseURL, cfg.OperatorToken)
	if err != nil {
		return nil, fmt.Errorf("new bot fleet: %w", err)
	}
	if strings.HasPrefix(cfg.Photo, "/") {
		// Photos are absolute http(s) URLs (docs/PROTOCOL.md); pages show
		// a photo under /static/img/ from their own origin.
		cfg.Photo = cl.base.String() + cfg.Photo
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Fleet{
		cfg: cfg, client: cl, log: log.With("part", "bots"),
		setc: make(chan int, 1), done: make(chan struct{}),
		target: cfg.Count, bots: map[int]*bot{},
		metGames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_bots_games_total", Help: "Fights bots finished, by outcome (win, loss).",
		}, []string{"outcome"}),
		metErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_bots_errors_total", Help: "Bot failures (login, queue, fight); each is retried.",
		}),
		metBots: prometheus.NewDesc("arena_bots", "Bots running, by state.", []string{"state"}, nil),
	}, nil
}

// Run starts Count bots and keeps the number SetCount asks for until ctx
// is done; it then stops every bot (each closes its sockets) and returns
// nil. Run may be called once; a second call returns ErrRunning.
func (f *Fleet) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.running || f.stopped {
		f.mu.Unlock()
		return ErrRunning
	}
	f.running = true
	target := f.target
	f.mu.Unlock()

	cancels := map[int]context.CancelFunc{}
	var wg sync.WaitGroup
	apply := func(n int) {
		for slot := len(cancels); slot < n; slot++ {
			b := &bot{f: f, slot: slot, name: BotName(slot), state: StateStarting,
				rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(slot)))}
			bctx, cancel := context.WithCancel(ctx)
			cancels[slot] = cancel
			f.mu.Lock()
			f.bots[slot] = b
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.run(bctx)
			}()
		}
		for slot := len(cancels) - 1; slot >= n; slot-- {
			cancels[slot]()
			delete(cancels, slot)
			f.mu.Lock()
			delete(f.bots, slot)
			f.mu.Unlock()
		}
		f.log.Info("bots", "count", n)
	}
	apply(target)
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
		f.mu.Lock()
		f.stopped, f.running = true, false
		f.bots = map[int]*bot{}
		f.mu.Unlock()
		close(f.done)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-f.setc:
			apply(n)
		}
	}
}

// SetCount changes how many bots the fleet keeps (0..MaxBots). Bots above
// the new count leave (closing their sockets, which leaves the queue or
// the room); new ones log in and queue. Before Run it sets the starting
// count; after Run returned it is ErrStopped.
func (f *Fleet) SetCount(n int) error {
	if n < 0 || n > MaxBots {
		return fmt.Errorf("set bot count %d: %w", n, ErrBadCount)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return fmt.Errorf("set bot count: %w", ErrStopped)
	}
	f.target = n
	if f.running {
		// The latest count wins: replace a pending one.
		select {
		case <-f.setc:
		default:
		}
		f.setc <- n
	}
	return nil
}

// Count returns the number of bots the fleet keeps.
func (f *Fleet) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target
}

// Done is closed when Run has returned.
func (f *Fleet) Done() <-chan struct{} { return f.done }

// Status returns a snapshot: counts, states and every running bot.
func (f *Fleet) Status() Status {
	f.mu.Lock()
	bots := make([]*bot, 0, len(f.bots))
	for _, b := range f.bots {
		bots = append(bots, b)
	}
	st := Status{Target: f.target, LastError: f.lastErr}
	f.mu.Unlock()
	sort.Slice(bots, func(i, j int) bool { return bots[i].slot < bots[j].slot })
	st.States = map[string]int{}
	st.Bots = make([]BotInfo, 0, len(bots))
	for _, b := range bots {
		in := b.info()
		st.States[in.State]++
		st.Bots = append(st.Bots, in)
	}
	st.Running = len(bots)
	st.Games, st.Wins, st.Errors = f.games.Load(), f.wins.Load(), f.errs.Load()
	return st
}

func (f *Fleet) played(b *bot, o *Outcome) {
	f.games.Add(1)
	outcome := "loss"
	if o.Won {
		f.wins.Add(1)
		outcome = "win"
	}
	f.metGames.WithLabelValues(outcome).Inc()
	b.mu.Lock()
	b.games++
	if o.Won {
		b.wins++
	}
	if o.NewScore > 0 {
		b.score = o.NewScore
	}
	b.mu.Unlock()
	f.log.Debug("bot fight over", "bot", b.name, "room", o.Room, "won", o.Won, "reason", o.Reason, "score", o.NewScore)
}

// errored counts a failure. Errors never contain tokens: URLs are redacted
// by the WebSocket dialer and HTTP errors carry only codes and messages.
func (f *Fleet) errored(b *bot, err error) {
	f.errs.Add(1)
	f.metErrors.Inc()
	f.mu.Lock()
	f.lastErr = b.name + ": " + clip(err.Error(), 200)
	f.mu.Unlock()
	f.log.Debug("bot failure; retrying", "bot", b.name, "err", err)
}

// Describe implements prometheus.Collector.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) {
	f.metGames.Describe(ch)
	f.metErrors.Describe(ch)
	ch <- f.metBots
}

// Collect implements prometheus.Collector: arena_bots{state},
// arena_bots_games_total{outcome}, arena_bots_errors_total.
func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	f.metGames.Collect(ch)
	f.metErrors.Collect(ch)
	st := f.Status()
	for _, s := range []string{StateStarting, StateQueued, StateFighting, StateResting, StateBackoff} {
		ch <- prometheus.MustNewConstMetric(f.metBots, prometheus.GaugeValue, float64(st.States[s]), s)
	}
}

// Run is New(cfg) then Fleet.Run(ctx): it keeps cfg.Count bots playing
// until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	f, err := New(cfg)
	if err != nil {
		return err
	}
	return f.Run(ctx)
}
