package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
)

// link is one live stream to the dispatcher. Its sender goroutine is the
// only writer of the stream.
type link struct {
	a      *Agent
	stream hostpb.HostControl_ConnectClient
	ctx    context.Context
	cancel context.CancelCauseFunc
	out    chan *hostpb.HostMessage

	mu      sync.Mutex
	nextID  uint64
	locates map[uint64]chan *hostpb.LocateResult
}

// dial returns the client connection to the dispatcher.
func (a *Agent) dial(ctx context.Context) (*grpc.ClientConn, error) {
	if a.cfg.Dial != nil {
		return a.cfg.Dial(ctx)
	}
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS)
	}
	return grpc.NewClient(a.cfg.Dispatcher,
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: a.cfg.MaxBackoff}, MinConnectTimeout: time.Second}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
}

// connectLoop keeps a stream to the dispatcher: connect, register, serve,
// and again after a backoff (50 ms doubling to MaxBackoff; refusals wait
// longer) whenever it ends, until ctx ends. The processes keep running
// meanwhile.
func (a *Agent) connectLoop(ctx context.Context) {
	conn, err := a.dial(ctx)
	if err != nil {
		a.log.Error("cannot set up the connection to the dispatcher", "dispatcher", a.cfg.Dispatcher, "err", err)
		return
	}
	defer conn.Close()
	client := hostpb.NewHostControlClient(conn)
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := a.session(ctx, client)
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.AlreadyExists, codes.FailedPrecondition, codes.InvalidArgument:
			a.log.Error("the dispatcher refused this host; retrying in 5s", "dispatcher", a.cfg.Dispatcher, "err", err)
			wait = 5 * time.Second
		default:
			if time.Since(start) > 5*time.Second {
				wait = 50 * time.Millisecond // it was up a while: come back fast
			}
			a.log.Warn("dispatcher unreachable; processes keep running, reconnecting", "dispatcher", a.cfg.Dispatcher, "in", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if wait < a.cfg.MaxBackoff {
			wait = min(2*wait, a.cfg.MaxBackoff)
		}
	}
}

// register is the host's registration: who it is and all it runs.
func (a *Agent) register() *hostpb.Register {
	r := &hostpb.Register{Name: a.cfg.Name, Instance: a.instance, Advertise: a.cfg.Advertise,
		Processes: a.snapshot(), ClockUnixMs: time.Now().UnixMilli()}
	kinds := make([]string, 0, len(a.cfg.Kinds))
	for k := range a.cfg.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, name := range kinds {
		k := a.cfg.Kinds[name]
		r.Kinds = append(r.Kinds, &hostpb.KindCapacity{Kind: name, FirstPort: int32(k.FirstPort), LastPort: int32(k.LastPort),
			MaxProcesses: int32(k.Max), Fixed: k.Fixed})
	}
	a.mu.Lock()
	r.Draining = a.draining
	a.mu.Unlock()
	return r
}

// session runs one stream until it ends.
func (a *Agent) session(ctx context.Context, client hostpb.HostControlClient) error {
	sctx, cancel := context.WithCancelCause(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.cfg.FleetToken))
	defer cancel(nil)
	stream, err := client.Connect(sctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if err := stream.Send(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Register{Register: a.register()}}); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	reg := first.GetRegistered()
	if reg == nil {
		return errors.New("the dispatcher did not answer the registration")
	}
	l := &link{a: a, stream: stream, ctx: sctx, cancel: cancel, out: make(chan *hostpb.HostMessage, 1024),
		locates: map[uint64]chan *hostpb.LocateResult{}}
	a.mu.Lock()
	a.defaults = reg
	a.maxnum = int(reg.GetDefaults().GetMaxnum())
	a.conn = l
	a.mu.Unlock()
	select {
	case a.registered <- struct{}{}:
	default:
	}
	defer func() {
		a.mu.Lock()
		if a.conn == l {
			a.conn = nil
		}
		a.mu.Unlock()
	}()
	a.log.Info("registered with the dispatcher", "dispatcher", a.cfg.Dispatcher, "processes", len(a.Processes()))
	hb := time.Duration(reg.GetHeartbeatMs()) * time.Millisecond
	if hb <= 0 {
		hb = 500 * time.Millisecond
	}
	go l.send(hb)
	for {
		msg, err := stream.Recv()
		if err != nil {
			cancel(err)
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *hostpb.DispatcherMessage_Command:
			go l.command(m.Command)
		case *hostpb.DispatcherMessage_Located:
			l.mu.Lock()
			ch := l.locates[m.Located.GetId()]
			l.mu.Unlock()
			if ch != nil {
				select {
				case ch <- m.Located:
				default:
				}
			}
		}
	}
}

// send writes heartbeats, process snapshots and queued messages until
// the link ends.
func (l *link) send(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	write := func(m *hostpb.HostMessage) bool {
		if err := l.stream.Send(m); err != nil {
			l.cancel(err)
			return false
		}
		return true
	}
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			if !write(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Heartbeat{Heartbeat: &hostpb.Heartbeat{ClockUnixMs: time.Now().UnixMilli()}}}) {
				return
			}
		case <-l.a.wake:
			for _, pi := range l.a.takeDirty() {
				if !write(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Process{Process: pi}}) {
					return
				}
			}
		case m := <-l.out:
			// Snapshots queued before a result go first, so the dispatcher
			// never hears a result before the state that led to it.
			for _, pi := range l.a.takeDirty() {
				if !write(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Process{Process: pi}}) {
					return
				}
			}
			if !write(m) {
				return
			}
		}
	}
}

// post queues m without blocking (dropped when the queue is full: a hint
// that may be lost).
func (l *link) post(m *hostpb.HostMessage) {
	select {
	case l.out <- m:
	default:
	}
}

func (l *link) enqueue(m *hostpb.HostMessage) {
	select {
	case l.out <- m:
	case <-l.ctx.Done():
	}
}

// command runs one of the dispatcher's commands and answers it.
func (l *link) command(cmd *hostpb.Command) {
	a := l.a
	res := &hostpb.CommandResult{Id: cmd.GetId()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	var load int
	switch c := cmd.GetCmd().(type) {
	case *hostpb.Command_Spawn:
		var pi *hostpb.ProcessInfo
		pi, err = a.spawn(ctx, c.Spawn.GetKind())
		res.Process = pi
	case *hostpb.Command_AssignRoom:
		load, err = a.assignRoom(ctx, int(c.AssignRoom.GetPort()), proc.RoomFromPB(c.AssignRoom.GetRoom()))
	case *hostpb.Command_Backfill:
		r := c.Backfill.GetRequest()
		load, err = a.backfill(ctx, int(c.Backfill.GetPort()), r.GetRoom(), proc.PlayersFromPB(r.GetPlayers()))
	case *hostpb.Command_HostMap:
		load, err = a.hostMap(ctx, int(c.HostMap.GetPort()), c.HostMap.GetMap())
	case *hostpb.Command_DrainProcess:
		err = a.drainProcess(int(c.DrainProcess.GetPort()), time.UnixMilli(c.DrainProcess.GetDeadlineUnixMs()))
	case *hostpb.Command_DrainHost:
		a.drainHost(time.UnixMilli(c.DrainHost.GetDeadlineUnixMs()))
	case *hostpb.Command_Maxnum:
		a.mu.Lock()
		a.maxnum = int(c.Maxnum.GetMaxnum())
		a.mu.Unlock()
	default:
		res.ErrorReason, res.Error = hostctl.ReasonUnknownCommand, fmt.Sprintf("unknown command %T", cmd.GetCmd())
	}
	res.Load = int32(load)
	if err != nil {
		res.ErrorReason, res.Error = reasonOf(err), err.Error()
	}
	l.enqueue(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Result{Result: res}})
}

// reasonOf is an error's result reason.
func reasonOf(err error) string {
	if r := proc.Reason(err); r != "" {
		return r
	}
	switch {
	case errors.Is(err, ErrNoCapacity):
		return hostctl.ReasonNoCapacity
	case errors.Is(err, ErrUnknownProcess):
		return hostctl.ReasonUnknownProcess
	case errors.Is(err, ErrUnknownKind):
		return hostctl.ReasonUnknownKind
	}
	return ""
}

// locator is the host's services to its processes (proc.HostServices):
// a map process locates maps through it.
type locator struct{ a *Agent }

// LocateMap asks the dispatcher; while it is away it answers from the
// table the dispatcher keeps in memcached (a map process of the fleet
// hosting mapID with room), so map handoffs that need no new process keep
// working.
func (l locator) LocateMap(ctx context.Context, mapID string) (string, error) {
	a := l.a
	a.mu.Lock()
	ln := a.conn
	a.mu.Unlock()
	if ln != nil {
		addr, err := ln.locate(ctx, mapID)
		if err == nil || errors.Is(err, proc.ErrUnknownMap) {
			return addr, err
		}
		a.log.Warn("locate map through the dispatcher failed; trying the stored table", "map", mapID, "err", err)
	}
	return a.locateStored(ctx, mapID)
}

// locate asks the dispatcher over the stream.
func (l *link) locate(ctx context.Context, mapID string) (string, error) {
	ch := make(chan *hostpb.LocateResult, 1)
	l.mu.Lock()
	l.nextID++
	id := l.nextID
	l.locates[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.locates, id)
		l.mu.Unlock()
	}()
	select {
	case l.out <- &hostpb.HostMessage{Msg: &hostpb.HostMessage_Locate{Locate: &hostpb.LocateMap{Id: id, Map: mapID}}}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case r := <-ch:
		if r.GetErrorReason() != "" || r.GetError() != "" {
			if e := proc.ErrorForReason(r.GetErrorReason()); e != nil {
				return "", fmt.Errorf("locate map %s: %w: %s", mapID, e, r.GetError())
			}
			return "", fmt.Errorf("locate map %s: %s", mapID, r.GetError())
		}
		return r.GetAddr(), nil
	case <-l.ctx.Done():
		return "", fmt.Errorf("locate map %s: the dispatcher went away", mapID)
	case <-ctx.Done():
		return "", fmt.Errorf("locate map %s: %w", mapID, ctx.Err())
	}
}

// locateStored answers from the stored fleet table: the ready map process
// hosting mapID with the fewest players there, under its MAXNUM.
func (a *Agent) locateStored(ctx context.Context, mapID string) (string, error) {
	if a.cfg.Store == nil {
		return "", fmt.Errorf("locate map %s: the dispatcher is away and no stored table is configured", mapID)
	}
	t, err := hostctl.ReadStoredTable(ctx, a.cfg.Store)
	if err != nil {
		return "", fmt.Errorf("locate map %s: the dispatcher is away: %w", mapID, err)
	}
	best, bestN := "", -1
	for _, p := range t.Processes {
		n, ok := p.Maps[mapID]
		if p.Kind != proc.KindMap || p.State != hostctl.Ready || !ok || (p.MaxNum > 0 && n >= p.MaxNum) {
			continue
		}
		if bestN < 0 || n < bestN {
			best, bestN = net.JoinHostPort(p.Advertise, strconv.Itoa(p.Port)), n
		}
	}
	if best == "" {
		return "", fmt.Errorf("locate map %s: the dispatcher is away and no running map process hosts it", mapID)
	}
	return best, nil
}
