package mapserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/lineproto"
)

// Locator tells where a map is hosted.
type Locator interface {
	// Locate returns host:port of a map server that hosts mapID and will
	// accept a player there.
	Locate(ctx context.Context, mapID string) (string, error)
}

// LocatorFunc adapts a function to Locator.
type LocatorFunc func(ctx context.Context, mapID string) (string, error)

// Locate implements Locator.
func (f LocatorFunc) Locate(ctx context.Context, mapID string) (string, error) { return f(ctx, mapID) }

// LineLocator locates maps with the dispatcher's `get|map|MAPID`. The
// dispatcher answers a port (on Host) or host:port. Requests are spread
// over Clients (each serialises its own requests), so concurrent switches
// do not queue behind one connection.
type LineLocator struct {
	Clients []*lineproto.Client
	Host    string
	next    atomic.Uint32
}

// NewLineLocator returns a LineLocator for the dispatcher at addr with
// conns connections (at least 1), pairing bare ports with host.
func NewLineLocator(addr, host string, conns int) *LineLocator {
	l := &LineLocator{Host: host}
	for i := 0; i < max(conns, 1); i++ {
		l.Clients = append(l.Clients, lineproto.NewClient(addr, 2*time.Second))
	}
	return l
}

// Locate implements Locator.
func (l *LineLocator) Locate(ctx context.Context, mapID string) (string, error) {
	c := l.Clients[int(l.next.Add(1))%len(l.Clients)]
	ans, err := c.Do(ctx, lineproto.Request{Verb: lineproto.VerbGet, Kind: lineproto.KindMap, Map: mapID}.Format())
	if err != nil {
		return "", fmt.Errorf("locate map %s: %w", mapID, err)
	}
	if p, err := strconv.Atoi(ans); err == nil && p > 0 && p < 65536 {
		return net.JoinHostPort(l.Host, ans), nil
	}
	if h, p, err := net.SplitHostPort(ans); err == nil && h != "" && p != "" {
		return ans, nil
	}
	return "", fmt.Errorf("locate map %s: bad dispatcher answer %q", mapID, ans)
}

// Close closes the connections.
func (l *LineLocator) Close() {
	for _, c := range l.Clients {
		_ = c.Close()
	}
}

// StaticLocator maps map ids to host:port, for tests and benchmarks.
// Unknown maps get ErrUnknownMap.
type StaticLocator map[string]string

// Locate implements Locator.
func (s StaticLocator) Locate(_ context.Context, mapID string) (string, error) {
	if a, ok := s[mapID]; ok {
		return a, nil
	}
	return "", fmt.Errorf("locate map %s: %w", mapID, ErrUnknownMap)
}

// LoadReporter reports a map server's load to the dispatcher: one Add per
// player entering a map, one Del per player leaving it.
// *lineproto.LoadReporter implements it.
type LoadReporter interface {
	Add(ctx context.Context, mapID string) error
	Del(ctx context.Context, mapID string) error
}

// MemReporter is an in-memory LoadReporter that counts players per map.
type MemReporter struct {
	mu   sync.Mutex
	load map[string]int
}

// Add implements LoadReporter.
func (m *MemReporter) Add(_ context.Context, mapID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.load == nil {
		m.load = make(map[string]int)
	}
	m.load[mapID]++
	return nil
}

// Del implements LoadReporter.
func (m *MemReporter) Del(_ context.Context, mapID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.load == nil {
		m.load = make(map[string]int)
	}
	m.load[mapID]--
	return nil
}

// Load returns the players counted on mapID.
func (m *MemReporter) Load(mapID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.load[mapID]
}

// asyncReporter forwards load changes to a LoadReporter from its own
// goroutine, so map instances never wait on the network. Changes are
// netted per map; a failed report is retried after a pause.
type asyncReporter struct {
	r   LoadReporter
	log *slog.Logger

	mu    sync.Mutex
	delta map[string]int
	wake  chan struct{}
	done  chan struct{}
	idle  chan struct{} // closed and replaced when delta drains
}

func newAsyncReporter(r LoadReporter, log *slog.Logger) *asyncReporter {
	a := &asyncReporter{r: r, log: log, delta: make(map[string]int), wake: make(chan struct{}, 1),
		done: make(chan struct{}), idle: make(chan struct{})}
	close(a.idle)
	go a.run()
	return a
}

func (a *asyncReporter) change(mapID string, d int) {
	a.mu.Lock()
	if len(a.delta) == 0 {
		a.idle = make(chan struct{})
	}
	a.delta[mapID] += d
	if a.delta[mapID] == 0 {
		delete(a.delta, mapID)
		if len(a.delta) == 0 {
			close(a.idle)
		}
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// flush waits until every change was reported or ctx ends.
func (a *asyncReporter) flush(ctx context.Context) {
	a.mu.Lock()
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

func (a *asyncReporter) close() { close(a.done) }

func (a *asyncReporter) run() {
	var lastWarn time.Time
	for {
		select {
		case <-a.done:
			return
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			var mapID string
			var d int
			for k, v := range a.delta {
				mapID, d = k, v
				break
			}
			a.mu.Unlock()
			if d == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var err error
			step := 1
			if d > 0 {
				err = a.r.Add(ctx, mapID)
			} else {
				err = a.r.Del(ctx, mapID)
				step = -1
			}
			cancel()
			if err != nil {
				if time.Since(lastWarn) > 10*time.Second {
					a.log.Warn("report map load", "map", mapID, "err", err)
					lastWarn = time.Now()
				}
				select {
				case <-a.done:
					return
				case <-time.After(250 * time.Millisecond):
				}
				continue
			}
			a.change(mapID, -step)
		}
	}
}

// splitHostPort is net.SplitHostPort with the port as an int.
func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return strings.TrimSpace(h), n, nil
}
