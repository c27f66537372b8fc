package mapserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/proc"
)

const testSecret = "test-secret-for-mapserver"

// fastCfg lets test players cross a map in one move.
var fastCfg = Config{MaxSpeed: 1e6, SaveInterval: 200 * time.Millisecond, Tick: 10 * time.Millisecond}

// routes is a mutable Locator for tests.
type routes struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *routes) set(mapID, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[mapID] = addr
}

func (r *routes) Locate(_ context.Context, mapID string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.m[mapID]; ok {
		return a, nil
	}
	return "", fmt.Errorf("locate %s: %w", mapID, ErrUnknownMap)
}

// cluster is n in-process map servers sharing one real memcached-protocol
// store, one secret and one locator.
type cluster struct {
	t       *testing.T
	st      store.Store
	signer  *auth.Signer
	world   *World
	routes  *routes
	servers []*Server
	reps    []*loadWatch
}

func newCluster(t *testing.T, n int, w *World, cfg Config) *cluster {
	t.Helper()
	return newClusterTuned(t, n, w, cfg, nil)
}

// newClusterTuned is newCluster with tune applied to each server before
// it listens.
func newClusterTuned(t *testing.T, n int, w *World, cfg Config, tune func(*Server)) *cluster {
	t.Helper()
	signer, err := auth.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if w == nil {
		w = DefaultWorld()
	}
	c := &cluster{t: t, st: storetest.New(t), signer: signer, world: w, routes: &routes{m: map[string]string{}}}
	for i := 0; i < n; i++ {
		s, err := New(Deps{Store: c.st, Signer: signer, Locator: c.routes, World: w, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		rep := watchLoad(t, s)
		if tune != nil {
			tune(s)
		}
		if _, err := s.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
			defer cancel()
			_ = s.Close(ctx)
		})
		c.servers = append(c.servers, s)
		c.reps = append(c.reps, rep)
	}
	return c
}

// place routes mapID to server i.
func (c *cluster) place(mapID string, i int) {
	c.t.Helper()
	if _, err := c.servers[i].HostMap(context.Background(), mapID); err != nil {
		c.t.Fatal(err)
	}
	c.routes.set(mapID, c.servers[i].Addr())
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newPlayer(name string) auth.Claims {
	return auth.Claims{Subject: auth.NewUUID(), Name: name}
}

func (c *cluster) enter(p auth.Claims, mapID string) EnterAnswer {
	c.t.Helper()
	ans, err := Enter(ctxT(c.t, 5*time.Second), c.st, c.signer, c.world, c.routes, p, mapID)
	if err != nil {
		c.t.Fatalf("enter %s: %v", mapID, err)
	}
	return ans
}

// dial connects with ticket to ws URL addr.
func dial(t *testing.T, addr, ticket string) *wsconn.Client {
	t.Helper()
	cl, err := wsconn.DialClient(ctxT(t, waitfor.Deadline()), addr+"?ticket="+url.QueryEscape(ticket), 4096)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	return cl
}

func welcome(t *testing.T, cl *wsconn.Client) Welcome {
	t.Helper()
	var w Welcome
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "welcome", &w); err != nil {
		t.Fatalf("welcome: %v", err)
	}
	return w
}

// join enters p onto mapID and returns the connected client and welcome.
func (c *cluster) join(p auth.Claims, mapID string) (*wsconn.Client, Welcome) {
	c.t.Helper()
	ans := c.enter(p, mapID)
	cl := dial(c.t, ans.Addr, ans.Ticket)
	return cl, welcome(c.t, cl)
}

type errMsg struct {
	Type    string   `json:"type"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	X       *float64 `json:"x"`
	Y       *float64 `json:"y"`
}

// expectError reads until an error message and checks its code.
func expectError(t *testing.T, cl *wsconn.Client, code string) errMsg {
	t.Helper()
	var e errMsg
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "error", &e); err != nil {
		t.Fatalf("waiting for error %s: %v", code, err)
	}
	if e.Code != code {
		t.Fatalf("error code %q (%s), want %q", e.Code, e.Message, code)
	}
	return e
}

// expectClosed waits for the server to close cl.
func expectClosed(t *testing.T, cl *wsconn.Client) {
	t.Helper()
	select {
	case <-cl.Done():
	case <-time.After(waitfor.Deadline()):
		t.Fatal("connection not closed by the server")
	}
}

func send(t *testing.T, cl *wsconn.Client, v any) {
	t.Helper()
	if err := cl.SendJSON(v); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func move(t *testing.T, cl *wsconn.Client, x, y float64) {
	send(t, cl, map[string]any{"type": "move", "x": x, "y": y})
}

func (c *cluster) state(uuid string) State {
	c.t.Helper()
	s, _, err := GetState(context.Background(), c.st, uuid)
	if err != nil {
		c.t.Fatalf("get state: %v", err)
	}
	return s
}

// poke edits a record in place (same version), as a game service would
// change hp or inventory between maps.
func (c *cluster) poke(uuid string, fn func(*State)) {
	c.t.Helper()
	// The owner's periodic save may write between the read and the
	// compare-and-swap: read again and retry, as a real writer would.
	var err error
	waitfor.Cond(c.t, "a poke of "+uuid+" that wins its compare-and-swap", func() bool {
		s, cas, gerr := GetState(context.Background(), c.st, uuid)
		if gerr != nil {
			c.t.Fatal(gerr)
		}
		fn(&s)
		err = casState(context.Background(), c.st, s, cas)
		return !errors.Is(err, store.ErrCASConflict)
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// players returns how many servers hold uuid and the total load.
func (c *cluster) load() []int {
	out := make([]int, len(c.servers))
	for i, s := range c.servers {
		st, _ := s.Status(context.Background())
		out[i] = st.Load
	}
	return out
}

func remoteCode(err error) string {
	var re *wsconn.RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitTicks waits until the map instances of this process have run n more
// ticks (counted by arena_map_tick_seconds, which every server in the
// process shares).
func (c *cluster) waitTicks(n uint64) {
	c.t.Helper()
	count := func() uint64 {
		var m dto.Metric
		if err := c.servers[0].met.tickSeconds.Write(&m); err != nil {
			c.t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	from := count()
	waitfor.Cond(c.t, fmt.Sprintf("%d ticks", n), func() bool { return count() >= from+n })
}

// loadWatch keeps the last proc.LoadChanged a server published: the load
// its host would see.
type loadWatch struct {
	mu   sync.Mutex
	last proc.LoadChanged
}

func watchLoad(t *testing.T, s interface {
	Watch(context.Context) (<-chan proc.Event, error)
}) *loadWatch {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := &loadWatch{}
	go func() {
		for ev := range ch {
			if lc, ok := ev.(proc.LoadChanged); ok {
				w.mu.Lock()
				w.last = lc
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Load returns the players on mapID in the last event.
func (w *loadWatch) Load(mapID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last.Maps[mapID]
}
