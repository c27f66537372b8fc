package mapserver

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/proc"
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

// loadNotifier publishes the server's load as proc.LoadChanged events
// from its own goroutine, so map instances never wait on anyone: a change
// wakes it (never blocking), and one event carries every change made since
// the last. The host's Status polls correct an event a slow watcher missed.
type loadNotifier struct {
	snapshot func() proc.LoadChanged
	events   *proc.Events
	wake     chan struct{}
	done     chan struct{}
	stopped  chan struct{}
}

func newLoadNotifier(events *proc.Events, snapshot func() proc.LoadChanged) *loadNotifier {
	n := &loadNotifier{snapshot: snapshot, events: events, wake: make(chan struct{}, 1),
		done: make(chan struct{}), stopped: make(chan struct{})}
	go n.run()
	return n
}

// changed notes a load change.
func (n *loadNotifier) changed() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *loadNotifier) run() {
	defer close(n.stopped)
	for {
		select {
		case <-n.done:
			return
		case <-n.wake:
			n.events.Publish(n.snapshot())
		}
	}
}

// flush publishes the load now.
func (n *loadNotifier) flush() { n.events.Publish(n.snapshot()) }

// close stops the goroutine; later changes are not published.
func (n *loadNotifier) close() {
	select {
	case <-n.done:
		return
	default:
	}
	close(n.done)
	<-n.stopped
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
