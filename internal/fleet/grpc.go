package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/proto/fleetpb"
)

// GRPCPlugin is the go-plugin plugin.GRPCPlugin for Process. Impl is set on
// the process side only.
type GRPCPlugin struct {
	plugin.Plugin
	Impl Process
}

// GRPCServer registers the Fleet service backed by Impl.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	fleetpb.RegisterFleetServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Process that calls the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &GRPCClient{c: fleetpb.NewFleetClient(c)}, nil
}

// toStatus maps sentinel errors to gRPC codes on the way out.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPortInUse):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrExists):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrDraining):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrUnknownMap):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrNotStarted):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus maps gRPC codes back to sentinel errors, wrapped with op.
func fromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch status.Code(err) {
	case codes.AlreadyExists:
		sentinel = ErrPortInUse
	case codes.FailedPrecondition:
		sentinel = ErrExists
	case codes.Unavailable:
		if s, ok := status.FromError(err); ok && s.Message() == ErrDraining.Error() {
			sentinel = ErrDraining
		}
	case codes.NotFound:
		sentinel = ErrUnknownMap
	case codes.Aborted:
		sentinel = ErrNotStarted
	}
	if sentinel != nil {
		return fmt.Errorf("%s: %w", op, sentinel)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// GRPCClient is the dispatcher's side of a Process.
type GRPCClient struct{ c fleetpb.FleetClient }

// Start implements Process.
func (g *GRPCClient) Start(ctx context.Context, cfg StartConfig) (string, error) {
	r, err := g.c.Start(ctx, &fleetpb.StartRequest{
		Kind: cfg.Kind, Host: cfg.Host, Port: int32(cfg.Port), Memcache: cfg.Memcache,
		StorePrefix: cfg.StorePrefix, Secret: cfg.Secret, FleetToken: cfg.FleetToken,
		Dispatcher: cfg.Dispatcher, Maxnum: int32(cfg.MaxNum), Options: cfg.Options,
	})
	if err != nil {
		return "", fromStatus("start", err)
	}
	return r.GetAddr(), nil
}

// Status implements Process.
func (g *GRPCClient) Status(ctx context.Context) (Status, error) {
	r, err := g.c.Status(ctx, &fleetpb.StatusRequest{})
	if err != nil {
		return Status{}, fromStatus("status", err)
	}
	maps := make(map[string]int, len(r.GetMaps()))
	for k, v := range r.GetMaps() {
		maps[k] = int(v)
	}
	return Status{Load: int(r.GetLoad()), Draining: r.GetDraining(), Connections: int(r.GetConnections()), Maps: maps}, nil
}

// AssignRoom implements Process.
func (g *GRPCClient) AssignRoom(ctx context.Context, room Room) (int, error) {
	req := &fleetpb.AssignRoomRequest{Room: room.ID, Mode: room.Mode, ExpiresUnix: room.Expires.Unix()}
	for _, p := range room.Players {
		req.Players = append(req.Players, &fleetpb.Player{Uuid: p.UUID, Username: p.Username, Photo: p.Photo, Score: int32(p.Score), Bot: p.Bot})
	}
	r, err := g.c.AssignRoom(ctx, req)
	if err != nil {
		return 0, fromStatus("assign room", err)
	}
	return int(r.GetLoad()), nil
}

// HostMap implements Process.
func (g *GRPCClient) HostMap(ctx context.Context, mapID string) (int, error) {
	r, err := g.c.HostMap(ctx, &fleetpb.HostMapRequest{Map: mapID})
	if err != nil {
		return 0, fromStatus("host map", err)
	}
	return int(r.GetLoad()), nil
}

// Drain implements Process.
func (g *GRPCClient) Drain(ctx context.Context, deadline time.Time) (int, error) {
	r, err := g.c.Drain(ctx, &fleetpb.DrainRequest{DeadlineUnixMs: deadline.UnixMilli()})
	if err != nil {
		return 0, fromStatus("drain", err)
	}
	return int(r.GetLoad()), nil
}

// grpcServer is the process's side: it adapts Impl to fleetpb.FleetServer.
type grpcServer struct {
	fleetpb.UnimplementedFleetServer
	impl Process
}

func (s *grpcServer) Start(ctx context.Context, r *fleetpb.StartRequest) (*fleetpb.StartResponse, error) {
	addr, err := s.impl.Start(ctx, StartConfig{
		Kind: r.GetKind(), Host: r.GetHost(), Port: int(r.GetPort()), Memcache: r.GetMemcache(),
		StorePrefix: r.GetStorePrefix(), Secret: r.GetSecret(), FleetToken: r.GetFleetToken(),
		Dispatcher: r.GetDispatcher(), MaxNum: int(r.GetMaxnum()), Options: r.GetOptions(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &fleetpb.StartResponse{Addr: addr, Pid: int32(os.Getpid())}, nil
}

func (s *grpcServer) Status(ctx context.Context, _ *fleetpb.StatusRequest) (*fleetpb.StatusResponse, error) {
	st, err := s.impl.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	maps := make(map[string]int32, len(st.Maps))
	for k, v := range st.Maps {
		maps[k] = int32(v)
	}
	return &fleetpb.StatusResponse{Load: int32(st.Load), Draining: st.Draining, Connections: int32(st.Connections), Maps: maps}, nil
}

func (s *grpcServer) AssignRoom(ctx context.Context, r *fleetpb.AssignRoomRequest) (*fleetpb.AssignRoomResponse, error) {
	room := Room{ID: r.GetRoom(), Mode: r.GetMode(), Expires: time.Unix(r.GetExpiresUnix(), 0)}
	for _, p := range r.GetPlayers() {
		room.Players = append(room.Players, Player{UUID: p.GetUuid(), Username: p.GetUsername(), Photo: p.GetPhoto(), Score: int(p.GetScore()), Bot: p.GetBot()})
	}
	load, err := s.impl.AssignRoom(ctx, room)
	if err != nil {
		return nil, toStatus(err)
	}
	return &fleetpb.AssignRoomResponse{Load: int32(load)}, nil
}

func (s *grpcServer) HostMap(ctx context.Context, r *fleetpb.HostMapRequest) (*fleetpb.HostMapResponse, error) {
	load, err := s.impl.HostMap(ctx, r.GetMap())
	if err != nil {
		return nil, toStatus(err)
	}
	return &fleetpb.HostMapResponse{Load: int32(load)}, nil
}

func (s *grpcServer) Drain(ctx context.Context, r *fleetpb.DrainRequest) (*fleetpb.DrainResponse, error) {
	load, err := s.impl.Drain(ctx, time.UnixMilli(r.GetDeadlineUnixMs()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &fleetpb.DrainResponse{Load: int32(load)}, nil
}
