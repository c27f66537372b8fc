package fightserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/sdk"
)

// fakeDispatcher answers the line protocol's add/del with ok and records
// the lines it got.
type fakeDispatcher struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
}

func newFakeDispatcher(t *testing.T) *fakeDispatcher {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDispatcher{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					d.mu.Lock()
					d.lines = append(d.lines, sc.Text())
					d.mu.Unlock()
					fmt.Fprint(c, "ok\n")
				}
			}()
		}
	}()
	return d
}

func (d *fakeDispatcher) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// dispense serves a new Process over go-plugin's in-process gRPC
// connection and returns the dispatcher's side of it.
func dispense(t *testing.T) (fleet.Process, *sdk.Process) {
	impl := NewProcess(quietLogger())
	t.Cleanup(impl.Shutdown)
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{fleet.PluginName: &fleet.GRPCPlugin{Impl: impl}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(fleet.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(fleet.Process), impl
}

func TestProcessOverGRPC(t *testing.T) {
	ctx := context.Background()
	disp := newFakeDispatcher(t)
	addrs := storetest.Addrs(t)
	prefix := fmt.Sprintf("fightproc%d.", time.Now().UnixNano())
	p, _ := dispense(t)

	room := fleet.Room{ID: "grpcroom1", Expires: time.Now().Add(time.Hour), Players: []fleet.Player{
		{UUID: auth.NewUUID(), Username: "ann", Score: 1500}, {UUID: auth.NewUUID(), Username: "bob", Score: 1500, Bot: true},
	}}
	if _, err := p.AssignRoom(ctx, room); !errorsIs(err, fleet.ErrNotStarted) {
		t.Fatalf("assign before start: %v", err)
	}
	if _, err := p.Status(ctx); !errorsIs(err, fleet.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	port := freePort(t)
	cfg := fleet.StartConfig{
		Kind: fleet.KindFight, Host: "127.0.0.1", Port: port, Memcache: addrs, StorePrefix: prefix,
		Secret: testSecret, FleetToken: "fleet-token", Dispatcher: disp.ln.Addr().String(), MaxNum: 10,
		Options: map[string]string{OptRoomTimeout: "1m", OptRejoinGrace: "5s", OptEventRate: "50", "unknown-option": "x",
			sdk.OptDatabase: dbtest.DSN(t, dbtest.SQLite), sdk.OptOutbox: t.TempDir()},
	}
	addr, err := p.Start(ctx, cfg)
	for attempt := 0; attempt < 5 && errorsIs(err, fleet.ErrPortInUse); attempt++ {
		// Taken by a parallel test process since freePort saw it free.
		port = freePort(t)
		cfg.Port = port
		addr, err = p.Start(ctx, cfg)
	}
	if err != nil || addr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("start: %q %v", addr, err)
	}
	if again, err := p.Start(ctx, cfg); err != nil || again != addr {
		t.Fatalf("start again: %q %v", again, err)
	}
	load, err := p.AssignRoom(ctx, room)
	if err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if got := disp.got(); len(got) != 1 || got[0] != fmt.Sprintf("add|%d|fleet-token|grpcroom1", port) {
		t.Fatalf("dispatcher got %q", got)
	}
	if _, err := p.AssignRoom(ctx, room); !errorsIs(err, fleet.ErrExists) {
		t.Fatalf("assign twice: %v", err)
	}
	if _, err := p.HostMap(ctx, "town"); !errorsIs(err, fleet.ErrUnknownMap) {
		t.Fatalf("host map: %v", err)
	}

	// Players join the address Start returned.
	signer, _ := auth.NewSigner(testSecret)
	dial := func(i int) *wsconn.Client {
		tok, _ := signer.Mint(auth.KindRoom, auth.Claims{Subject: room.Players[i].UUID, Room: room.ID}, time.Hour)
		cctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		cl, err := wsconn.DialClient(cctx, "ws://"+addr+"/ws?ticket="+tok, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		expect(t, cl, "state")
		return cl
	}
	ca, cb := dial(0), dial(1)
	if st, err := p.Status(ctx); err != nil || st.Load != 1 || st.Connections != 2 || st.Draining {
		t.Fatalf("status: %+v %v", st, err)
	}
	send(t, cb, `{"type":"leave"}`)
	if m := expect(t, ca, "result"); m.str("winner") != room.Players[0].UUID {
		t.Fatalf("result %v", m)
	}
	waitfor.Cond(t, "del report", func() bool { return len(disp.got()) == 2 })
	if got := disp.got()[1]; got != fmt.Sprintf("del|%d|fleet-token|grpcroom1", port) {
		t.Fatalf("del line %q", got)
	}
	// The result went to the player database named in the options, once.
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: cfg.Options[sdk.OptDatabase]})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Player(ctx, room.Players[1].UUID)
	if err != nil || rec.RatingIn("") != 1484 || !rec.Bot || rec.Ratings["default"].Losses != 1 {
		t.Fatalf("loser's record %+v %v", rec, err)
	}
	if m, err := db.Match(ctx, room.ID); err != nil || m.Host != addr || m.Game != "fight" {
		t.Fatalf("match %+v %v", m, err)
	}
	if n, err := p.Drain(ctx, time.Now().Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if _, err := p.AssignRoom(ctx, fleet.Room{ID: "late", Players: room.Players}); !errorsIs(err, fleet.ErrDraining) {
		t.Fatalf("assign while draining: %v", err)
	}

	// A second process on the same port is told to try another.
	p2, _ := dispense(t)
	if _, err := p2.Start(ctx, cfg); !errorsIs(err, fleet.ErrPortInUse) {
		t.Fatalf("start on a used port: %v", err)
	}
}

func TestProcessStartRefusals(t *testing.T) {
	ctx := context.Background()
	addrs := storetest.Addrs(t)
	base := fleet.StartConfig{Kind: fleet.KindFight, Host: "127.0.0.1", Memcache: addrs, Secret: testSecret}
	for name, mod := range map[string]func(*fleet.StartConfig){
		"no secret":       func(c *fleet.StartConfig) { c.Secret = "" },
		"no memcache":     func(c *fleet.StartConfig) { c.Memcache = nil },
		"map kind":        func(c *fleet.StartConfig) { c.Kind = fleet.KindMap },
		"bad timeout":     func(c *fleet.StartConfig) { c.Options = map[string]string{OptRoomTimeout: "soon"} },
		"negative grace":  func(c *fleet.StartConfig) { c.Options = map[string]string{OptRejoinGrace: "-1s"} },
		"zero rate":       func(c *fleet.StartConfig) { c.Options = map[string]string{OptEventRate: "0"} },
		"NaN rate":        func(c *fleet.StartConfig) { c.Options = map[string]string{OptEventRate: "NaN"} },
		"damage over 100": func(c *fleet.StartConfig) { c.Options = map[string]string{OptAttackDamage: "101"} },
		"bad port":        func(c *fleet.StartConfig) { c.Port = 70000 },
		"unreachable db": func(c *fleet.StartConfig) {
			c.Options = map[string]string{sdk.OptDatabase: "postgres://u:" + testSecret + "@127.0.0.1:1/x?connect_timeout=1", sdk.OptOutbox: t.TempDir()}
		},
		"db without outbox": func(c *fleet.StartConfig) {
			c.Options = map[string]string{sdk.OptDatabase: dbtest.DSN(t, dbtest.SQLite)}
		},
	} {
		cfg := base
		mod(&cfg)
		p, _ := dispense(t)
		if addr, err := p.Start(ctx, cfg); err == nil {
			t.Errorf("%s: started on %s", name, addr)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	cfg, unknown, err := ParseOptions(map[string]string{
		OptRoomTimeout: "2m", OptRejoinGrace: "10s", OptEventRate: "12.5", OptEventBurst: "30",
		OptAttackDamage: "25", OptAttackCooldown: "0", "maxnum": "5",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RoomTimeout != 2*time.Minute || cfg.RejoinGrace != 10*time.Second || cfg.EventRate != 12.5 ||
		cfg.EventBurst != 30 || cfg.AttackDamage != 25 || cfg.AttackCooldown >= 0 || len(unknown) != 1 || unknown[0] != "maxnum" {
		t.Fatalf("%+v %v", cfg, unknown)
	}
	d := DefaultConfig()
	if d.RoomTimeout != 10*time.Minute || d.RejoinGrace != 30*time.Second || d.EventRate != 40 || d.AttackCooldown != DefaultAttackCooldown {
		t.Fatalf("defaults %+v", d)
	}
}
