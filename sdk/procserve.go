package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/arena-game/arena/proc"
)

// ProcServer returns the game as a process of the public process contract
// (package proc): plugins lifecycle and rooms. Serve serves it when the
// process was started by an arena host.
func (p *Process) ProcServer() proc.Server {
	a := &procAdapter{p: p}
	return proc.Server{Lifecycle: a, Rooms: a, OnOrphan: p.Shutdown}
}

// procAdapter implements proc.Lifecycle and proc.Rooms over a Process.
type procAdapter struct {
	p      *Process
	events proc.Events
}

var (
	_ proc.Lifecycle = (*procAdapter)(nil)
	_ proc.Rooms     = (*procAdapter)(nil)
)

// Start implements proc.Lifecycle. The game's configuration is
// req.Game.ConfigJson (or req.Fight's fields, named as in
// `--fight-option`); whatever does not validate (ErrBadConfig: that JSON,
// an SDK setting, what the game's Setup refuses, the request's own
// fields) is proc.ErrBadOptions, a taken port proc.ErrPortInUse.
func (a *procAdapter) Start(ctx context.Context, req proc.StartRequest) (proc.Started, error) {
	var config []byte
	switch {
	case req.Game != nil:
		config = req.Game.GetConfigJson()
	case req.Fight != nil:
		config = proc.OptionsJSON(req.Fight)
	}
	sp := startParams{
		kind: req.Kind, bind: req.Bind(), advertise: req.Advertised(), port: req.Port, memcache: req.Memcache,
		prefix: req.StorePrefix, secret: req.Secret, config: config, dsn: req.DatabaseDSN, outbox: req.OutboxDir,
		events: a.publish, origins: req.AllowedOrigins,
	}
	addr, err := a.p.start(ctx, sp)
	if err != nil {
		return proc.Started{}, toProcErr(err)
	}
	return proc.Started{Addr: addr, Pid: os.Getpid(), Load: a.p.Server().Status().Load}, nil
}

func (a *procAdapter) publish(e Event) {
	switch e.Kind {
	case "room_ended":
		a.events.Publish(proc.RoomEnded{Room: e.Room, Load: e.Load, Reason: e.Reason})
	case "backfill_wanted":
		a.events.Publish(proc.BackfillWanted{Room: e.Room, Slots: e.Open})
	case "load":
		a.events.Publish(proc.LoadChanged{Load: e.Load})
	}
}

func (a *procAdapter) server() (*Server, error) {
	if s := a.p.Server(); s != nil {
		return s, nil
	}
	return nil, proc.ErrNotStarted
}

// Status implements proc.Lifecycle.
func (a *procAdapter) Status(context.Context) (proc.Status, error) {
	s, err := a.server()
	if err != nil {
		return proc.Status{}, fmt.Errorf("status: %w", err)
	}
	st := s.Status()
	return proc.Status{Load: st.Load, Draining: st.Draining, Connections: st.Connections, Rooms: s.RoomIDs()}, nil
}

// Drain implements proc.Lifecycle.
func (a *procAdapter) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s, err := a.server()
	if err != nil {
		return 0, fmt.Errorf("drain: %w", err)
	}
	return s.Drain(ctx, deadline), nil
}

// Watch implements proc.Lifecycle.
func (a *procAdapter) Watch(ctx context.Context) (<-chan proc.Event, error) {
	return a.events.Watch(ctx)
}

// AssignRoom implements proc.Rooms.
func (a *procAdapter) AssignRoom(ctx context.Context, room proc.Room) (int, error) {
	s, err := a.server()
	if err != nil {
		return 0, fmt.Errorf("assign room: %w", err)
	}
	spec := RoomSpec{ID: room.ID, Mode: room.Profile, Expires: room.Expires}
	if spec.Mode == "" {
		spec.Mode = room.Mode
	}
	for _, pl := range room.Players {
		spec.Players = append(spec.Players, PlayerSpec{UUID: pl.UUID, Username: pl.Username, Photo: pl.Photo, Rating: pl.Score, Bot: pl.Bot})
	}
	load, err := s.AssignRoom(ctx, spec)
	if err == nil {
		a.events.Publish(proc.LoadChanged{Load: load, Connections: s.Status().Connections})
	}
	return load, toProcErr(err)
}

// Backfill implements proc.Rooms.
func (a *procAdapter) Backfill(ctx context.Context, roomID string, players []proc.Player) (int, error) {
	s, err := a.server()
	if err != nil {
		return 0, fmt.Errorf("backfill: %w", err)
	}
	ps := make([]PlayerSpec, 0, len(players))
	for _, pl := range players {
		ps = append(ps, PlayerSpec{UUID: pl.UUID, Username: pl.Username, Photo: pl.Photo, Rating: pl.Score, Bot: pl.Bot})
	}
	load, err := s.Backfill(ctx, roomID, ps)
	return load, toProcErr(err)
}

// toProcErr adds the contract's sentinel to the SDK's errors.
func toProcErr(err error) error {
	for _, m := range []struct{ sdk, proc error }{
		{ErrDraining, proc.ErrDraining}, {ErrRoomExists, proc.ErrRoomExists}, {ErrUnknownRoom, proc.ErrUnknownRoom},
		{ErrRoomFull, proc.ErrRoomFull}, {ErrBadRoom, proc.ErrBadOptions}, {ErrBadConfig, proc.ErrBadOptions},
		{ErrPortInUse, proc.ErrPortInUse},
	} {
		if errors.Is(err, m.sdk) {
			return fmt.Errorf("%w: %w", err, m.proc)
		}
	}
	return err
}
