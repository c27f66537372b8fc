package fightserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// watched collects a process's events from its Watch stream.
type watched struct {
	mu     sync.Mutex
	events []proc.Event
}

func watch(t *testing.T, l proc.Lifecycle) *watched {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := l.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{}
	go func() {
		for ev := range ch {
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watched) got() []proc.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]proc.Event(nil), w.events...)
}

// dispense serves a new Process over go-plugin's in-process gRPC
// connection and returns the host's side of it.
func dispense(t *testing.T) (proc.Client, *sdk.Process) {
	impl := NewProcess(quietLogger())
	t.Cleanup(impl.Shutdown)
	ps := impl.ProcServer()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		proc.PluginLifecycle: &proc.LifecyclePlugin{Impl: ps.Lifecycle},
		proc.PluginRooms:     &proc.RoomsPlugin{Impl: ps.Rooms},
	})
	t.Cleanup(func() { client.Close() })
	c, err := proc.Dispense(client, proc.KindFight)
	if err != nil {
		t.Fatal(err)
	}
	return c, impl
}

func TestProcessOverGRPC(t *testing.T) {
	ctx := context.Background()
	addrs := storetest.Addrs(t)
	prefix := fmt.Sprintf("fightproc%d.", time.Now().UnixNano())
	p, _ := dispense(t)

	room := proc.Room{ID: "grpcroom1", Expires: time.Now().Add(time.Hour), Players: []proc.Player{
		{UUID: auth.NewUUID(), Username: "ann", Score: 1500}, {UUID: auth.NewUUID(), Username: "bob", Score: 1500, Bot: true},
	}}
	if _, err := p.Rooms.AssignRoom(ctx, room); !errorsIs(err, proc.ErrNotStarted) {
		t.Fatalf("assign before start: %v", err)
	}
	if _, err := p.Lifecycle.Status(ctx); !errorsIs(err, proc.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	events := watch(t, p.Lifecycle)
	port := sdktest.FreePort(t)
	req := proc.StartRequest{
		Kind: proc.KindFight, BindHost: "127.0.0.1", AdvertiseHost: "localhost", Port: port, Memcache: addrs, StorePrefix: prefix,
		Secret: testSecret, MaxNum: 10,
		Fight:       &procpb.FightOptions{RoomTimeout: durationpb.New(time.Minute), RejoinGrace: durationpb.New(5 * time.Second), EventRate: proto.Float64(50)},
		DatabaseDSN: dbtest.DSN(t, dbtest.SQLite), OutboxDir: t.TempDir(),
	}
	st, err := p.Lifecycle.Start(ctx, req)
	for attempt := 0; attempt < 5 && errorsIs(err, proc.ErrPortInUse); attempt++ {
		// Taken by a parallel test process since freePort saw it free.
		port = sdktest.FreePort(t)
		req.Port = port
		st, err = p.Lifecycle.Start(ctx, req)
	}
	if err != nil || st.Addr != fmt.Sprintf("localhost:%d", port) || st.Pid == 0 {
		t.Fatalf("start: %+v %v", st, err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if again, err := p.Lifecycle.Start(ctx, req); err != nil || again.Addr != st.Addr {
		t.Fatalf("start again: %+v %v", again, err)
	}
	load, err := p.Rooms.AssignRoom(ctx, room)
	if err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if _, err := p.Rooms.AssignRoom(ctx, room); !errorsIs(err, proc.ErrRoomExists) {
		t.Fatalf("assign twice: %v", err)
	}
	if _, err := p.Rooms.Backfill(ctx, "elsewhere", room.Players[:1]); !errorsIs(err, proc.ErrUnknownRoom) {
		t.Fatalf("backfill an unknown room: %v", err)
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
	if st, err := p.Lifecycle.Status(ctx); err != nil || st.Load != 1 || st.Connections != 2 || st.Draining ||
		len(st.Rooms) != 1 || st.Rooms[0] != room.ID {
		t.Fatalf("status: %+v %v", st, err)
	}
	send(t, cb, `{"type":"leave"}`)
	if m := expect(t, ca, "result"); m.str("winner") != room.Players[0].UUID {
		t.Fatalf("result %v", m)
	}
	var ended proc.RoomEnded
	waitfor.Cond(t, "the room's end on the Watch stream", func() bool {
		for _, ev := range events.got() {
			if re, ok := ev.(proc.RoomEnded); ok {
				ended = re
				return true
			}
		}
		return false
	})
	if ended.Room != room.ID || ended.Load != 0 {
		t.Fatalf("event %#v", ended)
	}
	// The result went to the player database named in the options, once.
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: req.DatabaseDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.Player(ctx, room.Players[1].UUID)
	if err != nil || rec.RatingIn("") != 1484 || !rec.Bot || rec.Ratings["default"].Losses != 1 {
		t.Fatalf("loser's record %+v %v", rec, err)
	}
	// The match history names the advertised address, not the bound one.
	if m, err := db.Match(ctx, room.ID); err != nil || m.Host != st.Addr || m.Game != "fight" {
		t.Fatalf("match %+v %v", m, err)
	}
	if n, err := p.Lifecycle.Drain(ctx, time.Now().Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if _, err := p.Rooms.AssignRoom(ctx, proc.Room{ID: "late", Players: room.Players}); !errorsIs(err, proc.ErrDraining) {
		t.Fatalf("assign while draining: %v", err)
	}

	// A second process on the same port is told to try another.
	p2, _ := dispense(t)
	if _, err := p2.Lifecycle.Start(ctx, req); !errorsIs(err, proc.ErrPortInUse) {
		t.Fatalf("start on a used port: %v", err)
	}
}

func TestProcessStartRefusals(t *testing.T) {
	ctx := context.Background()
	addrs := storetest.Addrs(t)
	base := proc.StartRequest{Kind: proc.KindFight, BindHost: "127.0.0.1", Memcache: addrs, Secret: testSecret}
	for name, mod := range map[string]func(*proc.StartRequest){
		"no secret":   func(c *proc.StartRequest) { c.Secret = "" },
		"no memcache": func(c *proc.StartRequest) { c.Memcache = nil },
		"map kind":    func(c *proc.StartRequest) { c.Kind = proc.KindMap },
		"short timeout": func(c *proc.StartRequest) {
			c.Fight = &procpb.FightOptions{RoomTimeout: durationpb.New(time.Millisecond)}
		},
		"negative grace":  func(c *proc.StartRequest) { c.Fight = &procpb.FightOptions{RejoinGrace: durationpb.New(-time.Second)} },
		"zero rate":       func(c *proc.StartRequest) { c.Fight = &procpb.FightOptions{EventRate: proto.Float64(0)} },
		"damage over 100": func(c *proc.StartRequest) { c.Fight = &procpb.FightOptions{AttackDamage: proto.Int32(101)} },
		"bad port":        func(c *proc.StartRequest) { c.Port = 70000 },
		"unreachable db": func(c *proc.StartRequest) {
			c.DatabaseDSN, c.OutboxDir = "postgres://u:"+testSecret+"@127.0.0.1:1/x?connect_timeout=1", t.TempDir()
		},
		"db without outbox": func(c *proc.StartRequest) { c.DatabaseDSN = dbtest.DSN(t, dbtest.SQLite) },
	} {
		req := base
		mod(&req)
		p, _ := dispense(t)
		st, err := p.Lifecycle.Start(ctx, req)
		switch {
		case err == nil:
			t.Errorf("%s: started: %+v", name, st)
		case name == "unreachable db":
			if errorsIs(err, proc.ErrBadOptions) {
				t.Errorf("%s: %v: an unreachable database is not a configuration error", name, err)
			}
		case !errorsIs(err, proc.ErrBadOptions):
			// Every other refusal is the configuration's: the fight's
			// options (its Setup), the kind, the secret, memcached, the
			// port, the database's outbox.
			t.Errorf("%s: %v, want BAD_OPTIONS", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestConfigFromOptions(t *testing.T) {
	o := &procpb.FightOptions{}
	if err := proc.SetOptions(o, []string{"room-timeout=2m", "rejoin-grace=10s", "event-rate=12.5", "event-burst=30", "attack-damage=25", "attack-cooldown=0s"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RoomTimeout != 2*time.Minute || cfg.RejoinGrace != 10*time.Second || cfg.EventRate != 12.5 ||
		cfg.EventBurst != 30 || cfg.AttackDamage != 25 || cfg.AttackCooldown >= 0 {
		t.Fatalf("%+v", cfg)
	}
	d, err := ConfigFromOptions(nil)
	if err != nil || d.RoomTimeout != 10*time.Minute || d.RejoinGrace != 30*time.Second || d.EventRate != 40 || d.AttackCooldown != DefaultAttackCooldown {
		t.Fatalf("defaults %+v %v", d, err)
	}
}
