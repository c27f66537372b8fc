package mapserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

func TestEnterNewPlayerJoinsAtSpawn(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("forest", 0)
	p := newPlayer("alice")
	ans := c.enter(p, "forest")
	if ans.Map != "forest" || ans.Resumed || ans.Addr != WebSocketURL(c.servers[0].Addr()) {
		t.Fatalf("enter answer %+v", ans)
	}
	rec := c.state(p.Subject)
	if rec.Status != StatusTransit || rec.Target != c.servers[0].Addr() || rec.Version != 1 || rec.HP != DefaultHP {
		t.Fatalf("record after enter: %+v", rec)
	}
	cl := dial(t, ans.Addr, ans.Ticket)
	w := welcome(t, cl)
	f := c.world.Map("forest")
	if w.You.ID != p.Subject || w.You.Name != "alice" || w.You.X != f.Spawn.X || w.You.Y != f.Spawn.Y || w.You.HP != DefaultHP {
		t.Fatalf("welcome you: %+v", w.You)
	}
	if w.Map.ID != "forest" || w.Map.Width != f.Width || len(w.Map.Portals) != len(f.Portals) || w.MaxSpeed != fastCfg.MaxSpeed {
		t.Fatalf("welcome map: %+v", w.Map)
	}
	// The join wrote version 2; the owner's periodic save (which renews
	// its lease) may already have written another.
	rec = c.state(p.Subject)
	if rec.Status != StatusPlaying || rec.Owner != c.servers[0].Addr() || rec.Version < 2 {
		t.Fatalf("record after join: %+v", rec)
	}
	waitfor.Cond(t, "load reported", func() bool { return c.reps[0].Load("forest") == 1 })
	st, _ := c.servers[0].Status(context.Background())
	if st.Load != 1 || st.Maps["forest"] != 1 {
		t.Fatalf("status %+v", st)
	}
	// A live owner: no second ticket.
	if _, err := Enter(context.Background(), c.st, c.signer, c.world, c.routes, p, "forest"); !errors.Is(err, ErrInMap) {
		t.Fatalf("enter while playing: %v", err)
	}
	if _, err := Enter(context.Background(), c.st, c.signer, c.world, c.routes, p, "atlantis"); !errors.Is(err, ErrUnknownMap) {
		t.Fatalf("enter unknown map: %v", err)
	}
}

// TestWalkThreeServers walks a player town -> forest -> cave -> forest ->
// town, each map on its own server, through portals (walking in) and
// explicit switches, and checks hp and inventory survive every handoff
// and exactly one server holds the player at a time.
func TestWalkThreeServers(t *testing.T) {
	c := newCluster(t, 3, nil, fastCfg)
	c.place("town", 0)
	c.place("forest", 1)
	c.place("cave", 2)
	serverOf := map[string]int{"town": 0, "forest": 1, "cave": 2}
	p := newPlayer("walker")
	ans := c.enter(p, "town")
	inv := json.RawMessage(`{"gold":42,"items":["sword","map"]}`)
	c.poke(p.Subject, func(s *State) { s.HP = 77; s.Inventory = inv })

	cl := dial(t, ans.Addr, ans.Ticket)
	w := welcome(t, cl)
	check := func(w Welcome, mapID string, at Point) {
		t.Helper()
		if w.Map.ID != mapID || w.You.X != at.X || w.You.Y != at.Y {
			t.Fatalf("arrived on %s at (%v,%v), want %s at %v", w.Map.ID, w.You.X, w.You.Y, mapID, at)
		}
		if w.You.HP != 77 || string(w.You.Inventory) != string(inv) {
			t.Fatalf("state not intact on %s: hp %d inventory %s", mapID, w.You.HP, w.You.Inventory)
		}
		i := serverOf[mapID]
		waitfor.Cond(t, "one owner", func() bool {
			l := c.load()
			n := 0
			for _, v := range l {
				n += v
			}
			return n == 1 && l[i] == 1
		})
		rec := c.state(p.Subject)
		if rec.Status != StatusPlaying || rec.Owner != c.servers[i].Addr() || rec.Map != mapID {
			t.Fatalf("record on %s: %+v", mapID, rec)
		}
	}
	check(w, "town", c.world.Map("town").Spawn)

	// hop leaves cl's map for to, by walking into the portal (walk) or by
	// a switch from next to it, and joins the next server.
	hop := func(cl *wsconn.Client, from, to string, walk bool) (*wsconn.Client, Welcome) {
		t.Helper()
		portal, _ := c.world.Map(from).NearestPortalTo(to, Point{})
		r := portal.Rect
		verBefore := c.state(p.Subject).Version
		if walk {
			move(t, cl, r.X+r.W/2, r.Y+r.H/2)
		} else {
			// Stand just outside the rectangle, within reach.
			x, y := r.X-10, r.Y+r.H/2
			if x < 0 {
				x = r.X + r.W + 10
			}
			move(t, cl, x, y)
			send(t, cl, map[string]string{"type": "switch", "map": to})
		}
		var sw SwitchAnswer
		if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
			t.Fatalf("%s -> %s: %v", from, to, err)
		}
		if sw.Map != to || sw.Addr != WebSocketURL(c.servers[serverOf[to]].Addr()) || sw.Ticket == "" {
			t.Fatalf("switch answer %+v", sw)
		}
		expectClosed(t, cl)
		rec := c.state(p.Subject)
		if rec.Status != StatusTransit || rec.Map != to || rec.From != from || rec.Version <= verBefore {
			t.Fatalf("record in transit: %+v", rec)
		}
		next := dial(t, sw.Addr, sw.Ticket)
		w := welcome(t, next)
		check(w, to, portal.Arrival)
		return next, w
	}
	cl, _ = hop(cl, "town", "forest", true)
	cl, _ = hop(cl, "forest", "cave", false)
	cl, _ = hop(cl, "cave", "forest", true)
	cl, _ = hop(cl, "forest", "town", false)
	for i, rep := range c.reps {
		for _, m := range []string{"town", "forest", "cave"} {
			want := 0
			if m == "town" && i == 0 {
				want = 1
			}
			waitfor.Cond(t, "load reports settle", func() bool { return rep.Load(m) == want })
		}
	}
	_ = cl
}

// TestCrashResume stops a server without any final save (as kill -9
// would): the player's record stays owned until its lease runs out, then
// Enter resumes the last saved state on another server.
func TestCrashResume(t *testing.T) {
	cfg := fastCfg
	cfg.SaveInterval = 400 * time.Millisecond // lease 1.2 s
	c := newCluster(t, 2, nil, cfg)
	c.place("town", 0)
	p := newPlayer("crashy")
	first := c.enter(p, "town")
	c.poke(p.Subject, func(s *State) { s.HP = 55; s.Inventory = json.RawMessage(`["potion"]`) })
	cl := dial(t, first.Addr, first.Ticket)
	welcome(t, cl)
	move(t, cl, 600, 520)
	waitfor.Cond(t, "position saved", func() bool { r := c.state(p.Subject); return r.X == 600 && r.Y == 520 })

	c.servers[0].crash()
	crashedAt := time.Now()
	expectClosed(t, cl)
	saved := c.state(p.Subject)
	if saved.Status != StatusPlaying {
		t.Fatalf("a crashed server released the record: %+v", saved)
	}
	if _, err := Enter(context.Background(), c.st, c.signer, c.world, c.routes, p, ""); !errors.Is(err, ErrInMap) {
		if time.Since(crashedAt) < cfg.SaveInterval {
			t.Fatalf("enter right after the crash: %v, want ErrInMap", err)
		}
	}
	c.place("town", 1)
	var ans EnterAnswer
	waitfor.Cond(t, "lease expiry", func() bool {
		var err error
		ans, err = Enter(context.Background(), c.st, c.signer, c.world, c.routes, p, "forest")
		return err == nil
	})
	if !ans.Resumed || ans.Map != "town" || ans.Addr != WebSocketURL(c.servers[1].Addr()) {
		t.Fatalf("enter after crash: %+v", ans)
	}
	cl2 := dial(t, ans.Addr, ans.Ticket)
	w := welcome(t, cl2)
	if w.You.X != saved.X || w.You.Y != saved.Y || w.You.HP != 55 || string(w.You.Inventory) != `["potion"]` {
		t.Fatalf("resumed %+v, saved %+v", w.You, saved)
	}
	if got := c.state(p.Subject); got.Owner != c.servers[1].Addr() {
		t.Fatalf("owner after resume: %+v", got)
	}
}

func TestDisconnectSavesOffline(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("town", 0)
	p := newPlayer("leaver")
	cl, _ := c.join(p, "town")
	// The instance applies the waiting moves before the leave that
	// follows them, so the offline save has the position.
	move(t, cl, 300, 310)
	cl.Close(wsconn.CloseNormal, "bye")
	waitfor.Cond(t, "offline save", func() bool { return c.state(p.Subject).Status == StatusOffline })
	rec := c.state(p.Subject)
	if rec.X != 300 || rec.Y != 310 || rec.Owner != "" {
		t.Fatalf("offline record %+v", rec)
	}
	waitfor.Cond(t, "load back to 0", func() bool { return c.reps[0].Load("town") == 0 })
	ans := c.enter(p, "cave") // resumes town, ignoring the map asked for
	if !ans.Resumed || ans.Map != "town" {
		t.Fatalf("re-enter: %+v", ans)
	}
	w := welcome(t, dial(t, ans.Addr, ans.Ticket))
	if w.You.X != 300 || w.You.Y != 310 {
		t.Fatalf("resumed at (%v,%v)", w.You.X, w.You.Y)
	}
}

func TestOwnershipLostKicks(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("town", 0)
	p := newPlayer("victim")
	cl, _ := c.join(p, "town")
	// Another server takes the record over (as after a lease expiry).
	c.poke(p.Subject, func(s *State) { s.Version += 5; s.OwnerID = "someone-else" })
	expectError(t, cl, CodeOwnershipLost)
	expectClosed(t, cl)
	waitfor.Cond(t, "player dropped", func() bool { return c.load()[0] == 0 })
	if rec := c.state(p.Subject); rec.OwnerID != "someone-else" {
		t.Fatalf("kicked server overwrote the record: %+v", rec)
	}
}

func TestDrainHandsOff(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	p1, p2 := newPlayer("one"), newPlayer("two")
	cl1, _ := c.join(p1, "town")
	move(t, cl1, 111, 222)
	c.place("town", 1)
	cl2, _ := c.join(p2, "town")
	if c.load()[1] != 1 {
		t.Fatalf("loads %v", c.load())
	}
	// Drain server 1 with town placed on server 0: p2 is handed over.
	c.place("town", 0)
	done := make(chan int)
	go func() {
		load, _ := c.servers[1].Drain(context.Background(), time.Now().Add(5*time.Second))
		done <- load
	}()
	var sw SwitchAnswer
	if err := cl2.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
		t.Fatal(err)
	}
	if load := <-done; load != 0 {
		t.Fatalf("drain left %d", load)
	}
	if sw.Map != "town" || sw.Addr != WebSocketURL(c.servers[0].Addr()) {
		t.Fatalf("drain switch %+v", sw)
	}
	welcome(t, dial(t, sw.Addr, sw.Ticket))
	if _, err := c.servers[1].HostMap(context.Background(), "cave"); err == nil {
		t.Fatal("a draining server hosted a new map")
	}
	// Drain server 0 with nowhere else to go: players are saved offline.
	go func() {
		load, _ := c.servers[0].Drain(context.Background(), time.Now().Add(5*time.Second))
		done <- load
	}()
	expectError(t, cl1, CodeDraining)
	if load := <-done; load != 0 {
		t.Fatalf("drain left %d", load)
	}
	if rec := c.state(p1.Subject); rec.Status != StatusOffline || rec.X != 111 {
		t.Fatalf("drained record %+v", rec)
	}
}

// TestConcurrentEntersOneOwner races many Enters and connections for one
// player: exactly one connection plays.
func TestConcurrentEntersOneOwner(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	p := newPlayer("racer")
	c.enter(p, "town")
	const n = 6
	answers := make([]EnterAnswer, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 1 {
				c.place("town", 1) // some land on the other server
			}
			a, err := Enter(context.Background(), c.st, c.signer, c.world, c.routes, p, "town")
			if err != nil {
				t.Errorf("enter: %v", err)
			}
			answers[i] = a
		}(i)
	}
	wg.Wait()
	results := make(chan string, n)
	for _, a := range answers {
		go func(a EnterAnswer) {
			cl, err := wsconn.DialClient(ctxT(t, waitfor.Deadline()), a.Addr+"?ticket="+a.Ticket, 64)
			if err != nil {
				results <- "dial"
				return
			}
			t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
			var w Welcome
			err = cl.RecvType(ctxT(t, waitfor.Deadline()), "welcome", &w)
			if err == nil {
				results <- "welcome"
				return
			}
			results <- remoteCode(err)
		}(a)
	}
	wins := 0
	for i := 0; i < n; i++ {
		switch r := <-results; r {
		case "welcome":
			wins++
		case CodeStaleTicket, CodeAlreadyClaimed:
		default:
			t.Errorf("unexpected result %q", r)
		}
	}
	if wins != 1 {
		t.Fatalf("%d connections play, want exactly 1", wins)
	}
	waitfor.Cond(t, "one server holds the player", func() bool { l := c.load(); return l[0]+l[1] == 1 })
}

// failingCAS is a store whose compare-and-swaps fail while fail is set
// (memcached unreachable for writes).
type failingCAS struct {
	store.Store
	fail atomic.Bool
}

func (f *failingCAS) CompareAndSwap(ctx context.Context, it *store.Item) error {
	if f.fail.Load() {
		return errors.New("cas: connection refused")
	}
	return f.Store.CompareAndSwap(ctx, it)
}

// TestLeaseSelfFencing: when saves keep failing, the server drops the
// player before its lease ends, so Enter can hand it elsewhere without two
// servers playing it.
func TestLeaseSelfFencing(t *testing.T) {
	signer, _ := auth.NewSigner(testSecret)
	st := &failingCAS{Store: store.NewMemory()}
	r := &routes{m: map[string]string{}}
	cfg := fastCfg
	cfg.SaveInterval = 100 * time.Millisecond // lease 300 ms
	srv, err := New(Deps{Store: st, Signer: signer, Locator: r, World: DefaultWorld(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	r.set("town", addr)
	p := newPlayer("p")
	ans, err := Enter(context.Background(), st, signer, DefaultWorld(), r, p, "town")
	if err != nil {
		t.Fatal(err)
	}
	cl := dial(t, ans.Addr, ans.Ticket)
	welcome(t, cl)
	st.fail.Store(true)
	expectError(t, cl, CodeOwnershipLost)
	expectClosed(t, cl)
	if st, _ := srv.Status(context.Background()); st.Load != 0 {
		t.Fatalf("load %d after the lease was given up", st.Load)
	}
	st.fail.Store(false)
	waitfor.Cond(t, "lease expiry", func() bool {
		_, err := Enter(context.Background(), st, signer, DefaultWorld(), r, p, "")
		return err == nil
	})
}

func TestSaveSlots(t *testing.T) {
	for _, tc := range []struct {
		save, tick time.Duration
		want       int
	}{
		{2 * time.Second, 100 * time.Millisecond, 20},
		{50 * time.Millisecond, 100 * time.Millisecond, 1},
		{time.Minute, 10 * time.Millisecond, maxSaveSlots},
		{250 * time.Millisecond, 100 * time.Millisecond, 2},
	} {
		if got := saveSlots(Config{SaveInterval: tc.save, Tick: tc.tick}); got != tc.want {
			t.Errorf("saveSlots(save %v, tick %v) = %d, want %d", tc.save, tc.tick, got, tc.want)
		}
	}
}

// TestSavesSpreadOverInterval checks that periodic saves renew every
// player once per save interval, spread over the interval instead of all
// at once.
func TestSavesSpreadOverInterval(t *testing.T) {
	cfg := fastCfg
	cfg.SaveInterval = 400 * time.Millisecond // 40 turns of 10 ms
	c := newCluster(t, 1, nil, cfg)
	c.place("town", 0)
	var ids []string
	var start []uint64
	for i := 0; i < 20; i++ {
		p := newPlayer(fmt.Sprintf("saver%d", i))
		cl, w := c.join(p, "town")
		discard(cl)
		ids = append(ids, p.Subject)
		start = append(start, w.You.Version)
	}
	t0 := time.Now()
	waitfor.Cond(t, "three saves of every player", func() bool {
		for i, id := range ids {
			if c.state(id).Version-start[i] < 3 {
				return false
			}
		}
		return true
	})
	// Once per interval: in the intervals that passed, at most one save
	// each (give or take one at each end).
	intervals := uint64(time.Since(t0) / cfg.SaveInterval)
	var minUpd, maxUpd int64
	for i, id := range ids {
		r := c.state(id)
		if n := r.Version - start[i]; n > intervals+2 {
			t.Errorf("player %d: %d saves in %d save intervals, want at most one per interval", i, n, intervals)
		}
		if i == 0 || r.Updated < minUpd {
			minUpd = r.Updated
		}
		if r.Updated > maxUpd {
			maxUpd = r.Updated
		}
	}
	// Saved all at once, the last saves would lie within a few ms.
	if spread := time.Duration(maxUpd-minUpd) * time.Millisecond; spread < cfg.SaveInterval/4 {
		t.Errorf("the latest saves lie within %v of each other; want them spread over the %v interval", spread, cfg.SaveInterval)
	}
}

// TestMovesWaitForTickButNotHandoffs checks, with a tick far longer than
// the test, that a switch sees the moves sent before it and that walking
// into a portal starts the handoff at once: moves wait for the next tick
// only when nothing else is waiting for them.
func TestMovesWaitForTickButNotHandoffs(t *testing.T) {
	cfg := fastCfg
	cfg.Tick = time.Minute
	cfg.SaveInterval = time.Minute
	c := newCluster(t, 2, nil, cfg)
	c.place("town", 0)
	c.place("forest", 1)
	portal, _ := c.world.Map("town").NearestPortalTo("forest", Point{})
	r := portal.Rect
	beside := Point{r.X - 10, r.Y + r.H/2}
	if beside.X < 0 {
		beside.X = r.X + r.W + 10
	}
	for _, walk := range []bool{false, true} {
		p := newPlayer(fmt.Sprintf("walk-%v", walk))
		cl, _ := c.join(p, "town")
		start := time.Now()
		if walk {
			move(t, cl, r.X+r.W/2, r.Y+r.H/2)
		} else {
			move(t, cl, beside.X, beside.Y)
			send(t, cl, map[string]string{"type": "switch", "map": "forest"})
		}
		var sw SwitchAnswer
		if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
			t.Fatalf("walk %v: %v", walk, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("walk %v: the switch answer took %v: it waited for a tick", walk, took)
		}
		w := welcome(t, dial(t, sw.Addr, sw.Ticket))
		if w.Map.ID != "forest" || w.You.X != portal.Arrival.X || w.You.Y != portal.Arrival.Y {
			t.Fatalf("walk %v: arrived %+v on %s", walk, w.You, w.Map.ID)
		}
	}
}
