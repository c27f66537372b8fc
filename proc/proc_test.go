package proc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/proto/procpb"
)

// fakeProcess serves all three capabilities in memory.
type fakeProcess struct {
	Events
	mu      sync.Mutex
	started StartRequest
	rooms   []Room
	located string
}

func (f *fakeProcess) Start(ctx context.Context, req StartRequest) (Started, error) {
	if req.Port == 1 {
		return Started{}, fmt.Errorf("listen: %w", ErrPortInUse)
	}
	f.mu.Lock()
	f.started = req
	f.mu.Unlock()
	if req.Host != nil {
		addr, err := req.Host.LocateMap(ctx, "town")
		if err != nil {
			return Started{}, err
		}
		f.mu.Lock()
		f.located = addr
		f.mu.Unlock()
	}
	return Started{Addr: fmt.Sprintf("%s:%d", req.Advertised(), req.Port), Pid: 42, Load: 0}, nil
}

func (f *fakeProcess) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := []string{}
	for _, r := range f.rooms {
		ids = append(ids, r.ID)
	}
	return Status{Load: len(f.rooms), Rooms: ids, Maps: map[string]int{"town": 2}}, nil
}

func (f *fakeProcess) Drain(context.Context, time.Time) (int, error) {
	return 0, fmt.Errorf("drain: %w", ErrDraining)
}

func (f *fakeProcess) AssignRoom(_ context.Context, r Room) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, have := range f.rooms {
		if have.ID == r.ID {
			return 0, fmt.Errorf("assign room %s: %w", r.ID, ErrRoomExists)
		}
	}
	f.rooms = append(f.rooms, r)
	return len(f.rooms), nil
}

func (f *fakeProcess) Backfill(_ context.Context, id string, ps []Player) (int, error) {
	return 0, fmt.Errorf("backfill %s: %w", id, ErrUnknownRoom)
}

func (f *fakeProcess) HostMap(_ context.Context, id string) (int, error) {
	if id == "nowhere" {
		return 0, ErrUnknownMap
	}
	return 3, nil
}

type hostFunc func(ctx context.Context, mapID string) (string, error)

func (h hostFunc) LocateMap(ctx context.Context, mapID string) (string, error) { return h(ctx, mapID) }

func dial(t *testing.T, impl *fakeProcess) Client {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		PluginLifecycle: &LifecyclePlugin{Impl: impl},
		PluginRooms:     &RoomsPlugin{Impl: impl},
		PluginMaps:      &MapsPlugin{Impl: impl},
	})
	t.Cleanup(func() { client.Close() })
	c, err := Dispense(client, KindFight)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Dispense(client, KindMap)
	if err != nil {
		t.Fatal(err)
	}
	c.Maps = m.Maps
	return c
}

func TestContractRoundTrip(t *testing.T) {
	impl := &fakeProcess{}
	c := dial(t, impl)
	ctx := context.Background()
	req := StartRequest{Kind: KindFight, BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.7", Port: 7000, Secret: "s",
		DatabaseDSN: "postgres://x", OutboxDir: "/tmp/o", MaxNum: 9, HostName: "h1",
		Fight: &procpb.FightOptions{RoomTimeout: durationpb.New(time.Minute)},
		Host:  hostFunc(func(_ context.Context, id string) (string, error) { return "10.0.0.8:7500", nil })}
	st, err := c.Lifecycle.Start(ctx, req)
	if err != nil || st.Addr != "10.0.0.7:7000" || st.Pid != 42 {
		t.Fatalf("start: %+v %v", st, err)
	}
	got := impl.started
	if got.Secret != "s" || got.DatabaseDSN != "postgres://x" || got.OutboxDir != "/tmp/o" || got.MaxNum != 9 ||
		got.HostName != "h1" || got.Fight.GetRoomTimeout().AsDuration() != time.Minute || got.Map != nil {
		t.Fatalf("start arrived as %+v", got)
	}
	if impl.located != "10.0.0.8:7500" {
		t.Fatalf("the process could not call its host's LocateMap over the broker: %q", impl.located)
	}
	if _, err := c.Lifecycle.Start(ctx, StartRequest{Port: 1}); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("start on used port: %v", err)
	}
	room := Room{ID: "r1", Game: "fight", Profile: "ranked", Mode: "m", Expires: time.Unix(2e9, 0),
		Players: []Player{{UUID: "u1", Username: "a", Photo: "p", Score: 1500, Bot: true}}}
	if load, err := c.Rooms.AssignRoom(ctx, room); err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if r := impl.rooms[0]; r.Game != "fight" || r.Profile != "ranked" || r.Players[0] != room.Players[0] || !r.Expires.Equal(room.Expires) {
		t.Fatalf("room arrived as %+v", r)
	}
	if _, err := c.Rooms.AssignRoom(ctx, room); !errors.Is(err, ErrRoomExists) {
		t.Fatalf("assign twice: %v", err)
	}
	if _, err := c.Rooms.Backfill(ctx, "r9", nil); !errors.Is(err, ErrUnknownRoom) {
		t.Fatalf("backfill: %v", err)
	}
	s, err := c.Lifecycle.Status(ctx)
	if err != nil || s.Load != 1 || len(s.Rooms) != 1 || s.Rooms[0] != "r1" || s.Maps["town"] != 2 {
		t.Fatalf("status: %+v %v", s, err)
	}
	if load, err := c.Maps.HostMap(ctx, "town"); err != nil || load != 3 {
		t.Fatalf("host map: %d %v", load, err)
	}
	if _, err := c.Maps.HostMap(ctx, "nowhere"); !errors.Is(err, ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if _, err := c.Lifecycle.Drain(ctx, time.Now()); !errors.Is(err, ErrDraining) {
		t.Fatalf("drain: %v", err)
	}
}

func TestWatchStreamsEvents(t *testing.T) {
	impl := &fakeProcess{}
	c := dial(t, impl)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Lifecycle.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		RoomEnded{Room: "r1", Load: 2, Reason: "winner"},
		LoadChanged{Load: 5, Maps: map[string]int{"town": 5}, Connections: 7},
		BackfillWanted{Room: "r2", Slots: 1},
	}
	// The process side subscribes when the stream opens.
	for deadline := time.Now().Add(10 * time.Second); impl.Watchers() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the stream never subscribed")
		}
		runtime.Gosched()
	}
	impl.Publish(want[0])
	if re := (<-events).(RoomEnded); re != want[0] {
		t.Fatalf("first event %#v", re)
	}
	impl.Publish(want[1])
	impl.Publish(want[2])
	if lc := (<-events).(LoadChanged); lc.Load != 5 || lc.Maps["town"] != 5 || lc.Connections != 7 {
		t.Fatalf("load changed %#v", lc)
	}
	if bw := (<-events).(BackfillWanted); bw != want[2] {
		t.Fatalf("backfill wanted %#v", bw)
	}
	cancel()
	for range events {
	}
}

// TestErrorsMapByReasonNotText: the sentinel is found from the ErrorInfo
// reason alone; a message that merely reads like a sentinel maps to none.
func TestErrorsMapByReasonNotText(t *testing.T) {
	for _, sentinel := range []error{ErrPortInUse, ErrDraining, ErrRoomExists, ErrUnknownRoom, ErrRoomFull, ErrUnknownMap, ErrNotStarted, ErrBadOptions} {
		wire := ToStatus(fmt.Errorf("op: %w", sentinel))
		if got := FromStatus("call", wire); !errors.Is(got, sentinel) {
			t.Errorf("%v: round trip gave %v", sentinel, got)
		}
		// The same reason with an unrelated message still maps.
		st, _ := status.New(codes.Unknown, "something else entirely").WithDetails(&errdetails.ErrorInfo{Domain: ErrorDomain, Reason: Reason(sentinel)})
		if got := FromStatus("call", st.Err()); !errors.Is(got, sentinel) {
			t.Errorf("%v: reason with another text gave %v", sentinel, got)
		}
		// The sentinel's text without the ErrorInfo maps to nothing.
		plain := status.Error(codes.Unavailable, sentinel.Error())
		if got := FromStatus("call", plain); errors.Is(got, sentinel) {
			t.Errorf("%v: matched on message text", sentinel)
		}
		// Another domain's reason maps to nothing.
		other, _ := status.New(codes.Unavailable, "x").WithDetails(&errdetails.ErrorInfo{Domain: "example.com", Reason: Reason(sentinel)})
		if got := FromStatus("call", other.Err()); errors.Is(got, sentinel) {
			t.Errorf("%v: matched a foreign domain", sentinel)
		}
	}
	if got := FromStatus("call", ToStatus(context.DeadlineExceeded)); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", got)
	}
	if got := ToStatus(errors.New("boom")); status.Code(got) != codes.Internal {
		t.Errorf("plain error: %v", got)
	}
}

func TestSetOption(t *testing.T) {
	f := &procpb.FightOptions{}
	if err := SetOptions(f, []string{"room-timeout=30s", "event_rate=12.5", "event-burst=30", "attack-cooldown=0s"}); err != nil {
		t.Fatal(err)
	}
	if f.GetRoomTimeout().AsDuration() != 30*time.Second || f.GetEventRate() != 12.5 || f.GetEventBurst() != 30 ||
		f.AttackCooldown == nil || f.GetAttackCooldown().AsDuration() != 0 || f.AttackDamage != nil {
		t.Fatalf("options: %v", f)
	}
	c := &procpb.ChatOptions{}
	if err := SetOption(c, "operator-token", "tok"); err != nil || c.GetOperatorToken() != "tok" {
		t.Fatalf("string option: %v %v", c, err)
	}
	for _, kv := range []string{"tick=soon", "event-rate=NaN", "event-rate=+Inf", "event-burst=2.5", "nope=1", "=1", "room-timeout"} {
		if err := SetOptions(&procpb.FightOptions{}, []string{kv}); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%q: %v, want ErrBadOptions", kv, err)
		}
	}
	if err := CheckRange("burst", 11, 1, 10); !errors.Is(err, ErrBadOptions) {
		t.Errorf("range: %v", err)
	}
}

func TestStartRequestLogValueHasNoSecrets(t *testing.T) {
	v := StartRequest{Secret: "s3cret", DatabaseDSN: "postgres://u:pw@db", Chat: &procpb.ChatOptions{OperatorToken: "op-tok-123"}}.LogValue().String()
	for _, secret := range []string{"s3cret", "pw@db", "op-tok-123"} {
		if strings.Contains(v, secret) {
			t.Fatalf("LogValue shows %q: %s", secret, v)
		}
	}
}
