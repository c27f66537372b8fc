package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

type fakeProcess struct {
	started StartConfig
	rooms   []Room
}

func (f *fakeProcess) Start(_ context.Context, cfg StartConfig) (string, error) {
	if cfg.Port == 1 {
		return "", fmt.Errorf("listen: %w", ErrPortInUse)
	}
	f.started = cfg
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), nil
}
func (f *fakeProcess) Status(context.Context) (Status, error) {
	return Status{Load: len(f.rooms), Maps: map[string]int{"town": 2}}, nil
}
func (f *fakeProcess) AssignRoom(_ context.Context, r Room) (int, error) {
	for _, have := range f.rooms {
		if have.ID == r.ID {
			return 0, ErrExists
		}
	}
	f.rooms = append(f.rooms, r)
	return len(f.rooms), nil
}
func (f *fakeProcess) HostMap(_ context.Context, id string) (int, error) {
	if id == "nowhere" {
		return 0, ErrUnknownMap
	}
	return 0, nil
}
func (f *fakeProcess) Drain(context.Context, time.Time) (int, error) { return 0, ErrDraining }

func TestGRPCRoundTrip(t *testing.T) {
	impl := &fakeProcess{}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}})
	defer client.Close()
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	p := raw.(Process)
	ctx := context.Background()

	addr, err := p.Start(ctx, StartConfig{Kind: KindFight, Host: "127.0.0.1", Port: 7000, Secret: "s", Options: map[string]string{"a": "b"}})
	if err != nil || addr != "127.0.0.1:7000" || impl.started.Secret != "s" || impl.started.Options["a"] != "b" {
		t.Fatalf("start: %q %v %+v", addr, err, impl.started)
	}
	if _, err := p.Start(ctx, StartConfig{Port: 1}); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("start on used port: %v", err)
	}
	room := Room{ID: "r1", Players: []Player{{UUID: "u1", Username: "a", Score: 1500}}, Expires: time.Unix(1e9, 0)}
	if load, err := p.AssignRoom(ctx, room); err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if impl.rooms[0].Players[0].Score != 1500 || !impl.rooms[0].Expires.Equal(room.Expires) {
		t.Fatalf("room arrived as %+v", impl.rooms[0])
	}
	if _, err := p.AssignRoom(ctx, room); !errors.Is(err, ErrExists) {
		t.Fatalf("assign twice: %v", err)
	}
	st, err := p.Status(ctx)
	if err != nil || st.Load != 1 || st.Maps["town"] != 2 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := p.HostMap(ctx, "nowhere"); !errors.Is(err, ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if _, err := p.Drain(ctx, time.Now()); !errors.Is(err, ErrDraining) {
		t.Fatalf("drain: %v", err)
	}
}
