package proc

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/arena-game/arena/proto/procpb"
)

// LifecyclePlugin is the go-plugin plugin "lifecycle". Impl is set on the
// process side only.
type LifecyclePlugin struct {
	plugin.Plugin
	Impl Lifecycle
}

// GRPCServer registers the Lifecycle service backed by Impl.
func (p *LifecyclePlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	procpb.RegisterLifecycleServer(s, &lifecycleServer{impl: p.Impl, broker: b})
	return nil
}

// GRPCClient returns a Lifecycle that calls the plugin over c.
func (p *LifecyclePlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &lifecycleClient{c: procpb.NewLifecycleClient(c), broker: b}, nil
}

// RoomsPlugin is the go-plugin plugin "rooms".
type RoomsPlugin struct {
	plugin.Plugin
	Impl Rooms
}

// GRPCServer registers the Rooms service backed by Impl.
func (p *RoomsPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	procpb.RegisterRoomsServer(s, &roomsServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Rooms that calls the plugin over c.
func (p *RoomsPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &roomsClient{c: procpb.NewRoomsClient(c)}, nil
}

// MapsPlugin is the go-plugin plugin "maps".
type MapsPlugin struct {
	plugin.Plugin
	Impl Maps
}

// GRPCServer registers the Maps service backed by Impl.
func (p *MapsPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	procpb.RegisterMapsServer(s, &mapsServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Maps that calls the plugin over c.
func (p *MapsPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &mapsClient{c: procpb.NewMapsClient(c)}, nil
}

// PluginMap is the plugin set a host dispenses from (client side).
var PluginMap = map[string]plugin.Plugin{
	PluginLifecycle: &LifecyclePlugin{},
	PluginRooms:     &RoomsPlugin{},
	PluginMaps:      &MapsPlugin{},
}

// Capabilities returns the plugins a process of kind serves besides
// lifecycle: maps for map processes, none for chat, rooms for fight and
// every game.
func Capabilities(kind string) []string {
	switch kind {
	case KindMap:
		return []string{PluginMaps}
	case KindChat:
		return nil
	}
	return []string{PluginRooms}
}

// Client is a host's handle on one process: the capabilities it serves
// (Rooms or Maps nil when it serves neither).
type Client struct {
	Lifecycle Lifecycle
	Rooms     Rooms
	Maps      Maps
}

// Dispense returns the Client of a go-plugin connection to a process of
// kind (see Capabilities).
func Dispense(rpc plugin.ClientProtocol, kind string) (Client, error) {
	var c Client
	raw, err := rpc.Dispense(PluginLifecycle)
	if err != nil {
		return c, fmt.Errorf("dispense %s: %w", PluginLifecycle, err)
	}
	c.Lifecycle = raw.(Lifecycle)
	for _, name := range Capabilities(kind) {
		raw, err := rpc.Dispense(name)
		if err != nil {
			return c, fmt.Errorf("dispense %s: %w", name, err)
		}
		switch v := raw.(type) {
		case Rooms:
			c.Rooms = v
		case Maps:
			c.Maps = v
		}
	}
	return c, nil
}

// lifecycleClient is the host's side of Lifecycle.
type lifecycleClient struct {
	c      procpb.LifecycleClient
	broker *plugin.GRPCBroker
}

func (l *lifecycleClient) Start(ctx context.Context, req StartRequest) (Started, error) {
	pb := startToPB(req)
	if req.Host != nil && l.broker != nil {
		id := l.broker.NextId()
		host := req.Host
		go l.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			procpb.RegisterHostServicesServer(s, &hostServicesServer{impl: host})
			return s
		})
		pb.HostServices = id
	}
	r, err := l.c.Start(ctx, pb)
	if err != nil {
		return Started{}, FromStatus("start", err)
	}
	return Started{Addr: r.GetAddr(), Pid: int(r.GetPid()), Load: int(r.GetLoad())}, nil
}

func (l *lifecycleClient) Status(ctx context.Context) (Status, error) {
	r, err := l.c.Status(ctx, &procpb.StatusRequest{})
	if err != nil {
		return Status{}, FromStatus("status", err)
	}
	return Status{Load: int(r.GetLoad()), Draining: r.GetDraining(), Connections: int(r.GetConnections()),
		Rooms: r.GetRooms(), Maps: mapsFromPB(r.GetMaps())}, nil
}

func (l *lifecycleClient) Drain(ctx context.Context, deadline time.Time) (int, error) {
	r, err := l.c.Drain(ctx, &procpb.DrainRequest{DeadlineUnixMs: deadline.UnixMilli()})
	if err != nil {
		return 0, FromStatus("drain", err)
	}
	return int(r.GetLoad()), nil
}

// Watch opens the event stream; the channel closes when the stream ends
// (the process exited, or ctx ended).
func (l *lifecycleClient) Watch(ctx context.Context) (<-chan Event, error) {
	stream, err := l.c.Watch(ctx, &procpb.WatchRequest{})
	if err != nil {
		return nil, FromStatus("watch", err)
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			e := EventFromPB(ev)
			if e == nil {
				continue // an event kind this host does not know
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// lifecycleServer is the process's side: it adapts Impl to the service.
type lifecycleServer struct {
	procpb.UnimplementedLifecycleServer
	impl   Lifecycle
	broker *plugin.GRPCBroker
}

func (s *lifecycleServer) Start(ctx context.Context, r *procpb.StartRequest) (*procpb.Started, error) {
	req := startFromPB(r)
	if id := r.GetHostServices(); id != 0 && s.broker != nil {
		conn, err := s.broker.Dial(id)
		if err != nil {
			return nil, ToStatus(fmt.Errorf("start: dial host services: %w", err))
		}
		req.Host = &hostServicesClient{c: procpb.NewHostServicesClient(conn)}
	}
	st, err := s.impl.Start(ctx, req)
	if err != nil {
		return nil, ToStatus(err)
	}
	pid := st.Pid
	if pid == 0 {
		pid = os.Getpid()
	}
	return &procpb.Started{Addr: st.Addr, Pid: int32(pid), Load: int32(st.Load)}, nil
}

func (s *lifecycleServer) Status(ctx context.Context, _ *procpb.StatusRequest) (*procpb.ProcessStatus, error) {
	st, err := s.impl.Status(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.ProcessStatus{Load: int32(st.Load), Draining: st.Draining, Connections: int32(st.Connections),
		Rooms: st.Rooms, Maps: mapsToPB(st.Maps)}, nil
}

func (s *lifecycleServer) Drain(ctx context.Context, r *procpb.DrainRequest) (*procpb.DrainResponse, error) {
	load, err := s.impl.Drain(ctx, time.UnixMilli(r.GetDeadlineUnixMs()))
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.DrainResponse{Load: int32(load)}, nil
}

func (s *lifecycleServer) Watch(_ *procpb.WatchRequest, stream procpb.Lifecycle_WatchServer) error {
	ctx := stream.Context()
	events, err := s.impl.Watch(ctx)
	if err != nil {
		return ToStatus(err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if err := stream.Send(EventToPB(ev)); err != nil {
				return err
			}
		}
	}
}

type roomsClient struct{ c procpb.RoomsClient }

func (r *roomsClient) AssignRoom(ctx context.Context, room Room) (int, error) {
	a, err := r.c.AssignRoom(ctx, RoomToPB(room))
	if err != nil {
		return 0, FromStatus("assign room", err)
	}
	return int(a.GetLoad()), nil
}

func (r *roomsClient) Backfill(ctx context.Context, roomID string, players []Player) (int, error) {
	a, err := r.c.Backfill(ctx, &procpb.BackfillRequest{Room: roomID, Players: PlayersToPB(players)})
	if err != nil {
		return 0, FromStatus("backfill", err)
	}
	return int(a.GetLoad()), nil
}

type roomsServer struct {
	procpb.UnimplementedRoomsServer
	impl Rooms
}

func (s *roomsServer) AssignRoom(ctx context.Context, r *procpb.AssignRoomRequest) (*procpb.LoadResponse, error) {
	load, err := s.impl.AssignRoom(ctx, RoomFromPB(r))
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.LoadResponse{Load: int32(load)}, nil
}

func (s *roomsServer) Backfill(ctx context.Context, r *procpb.BackfillRequest) (*procpb.LoadResponse, error) {
	load, err := s.impl.Backfill(ctx, r.GetRoom(), PlayersFromPB(r.GetPlayers()))
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.LoadResponse{Load: int32(load)}, nil
}

type mapsClient struct{ c procpb.MapsClient }

func (m *mapsClient) HostMap(ctx context.Context, mapID string) (int, error) {
	a, err := m.c.HostMap(ctx, &procpb.HostMapRequest{Map: mapID})
	if err != nil {
		return 0, FromStatus("host map", err)
	}
	return int(a.GetLoad()), nil
}

type mapsServer struct {
	procpb.UnimplementedMapsServer
	impl Maps
}

func (s *mapsServer) HostMap(ctx context.Context, r *procpb.HostMapRequest) (*procpb.LoadResponse, error) {
	load, err := s.impl.HostMap(ctx, r.GetMap())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.LoadResponse{Load: int32(load)}, nil
}

type hostServicesClient struct{ c procpb.HostServicesClient }

func (h *hostServicesClient) LocateMap(ctx context.Context, mapID string) (string, error) {
	r, err := h.c.LocateMap(ctx, &procpb.LocateMapRequest{Map: mapID})
	if err != nil {
		return "", FromStatus("locate map", err)
	}
	return r.GetAddr(), nil
}

type hostServicesServer struct {
	procpb.UnimplementedHostServicesServer
	impl HostServices
}

func (s *hostServicesServer) LocateMap(ctx context.Context, r *procpb.LocateMapRequest) (*procpb.LocateMapResponse, error) {
	addr, err := s.impl.LocateMap(ctx, r.GetMap())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &procpb.LocateMapResponse{Addr: addr}, nil
}
