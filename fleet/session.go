package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
)

// outQueue is how many messages to one host may wait to be sent; past it
// a command fails at once (the host is not reading).
const outQueue = 256

// session is one host's stream. Its run goroutine is the only one that
// reads the stream and applies what the host says; commands are sent by
// its sender goroutine and answered through pending.
type session struct {
	f        *Fleet
	name     string
	instance string
	stream   hostpb.HostControl_ConnectServer
	ctx      context.Context
	cancel   context.CancelCauseFunc
	out      chan *hostpb.DispatcherMessage
	limiter  *rate.Limiter

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *hostpb.CommandResult
	spawns  map[string]int // spawns in flight per kind
}

func newSession(f *Fleet, name, instance string, stream hostpb.HostControl_ConnectServer) *session {
	ctx, cancel := context.WithCancelCause(stream.Context())
	return &session{f: f, name: name, instance: instance, stream: stream, ctx: ctx, cancel: cancel,
		out:     make(chan *hostpb.DispatcherMessage, outQueue),
		limiter: rate.NewLimiter(rate.Limit(f.cfg.HostRate), f.cfg.HostBurst),
		pending: map[uint64]chan *hostpb.CommandResult{}, spawns: map[string]int{}}
}

// errSessionClosed is the cause of a session replaced by a newer
// connection of the same host.
var errSessionClosed = errors.New("host session replaced by a newer connection")

// run serves the stream until it ends: the sender in a goroutine of its
// own, the receiver here. It returns the error that ended the stream.
func (s *session) run() error {
	go s.send()
	for {
		msg, err := s.stream.Recv()
		if err != nil {
			if cause := context.Cause(s.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return err
		}
		if !s.limiter.Allow() {
			s.f.metrics.HostRefusals.WithLabelValues("flood").Inc()
			s.f.log.Warn("host floods the fleet: closing its stream", "host", s.name, "rate", s.f.cfg.HostRate, "burst", s.f.cfg.HostBurst)
			err := status.Errorf(codes.ResourceExhausted, "more than %v messages a second (burst %d)", s.f.cfg.HostRate, s.f.cfg.HostBurst)
			s.cancel(err)
			return err
		}
		s.f.seen(s)
		switch m := msg.GetMsg().(type) {
		case *hostpb.HostMessage_Heartbeat:
			if err := s.f.heartbeat(s, m.Heartbeat); err != nil {
				s.cancel(err)
				return err
			}
		case *hostpb.HostMessage_Process:
			s.f.applyProcess(s, m.Process, false)
		case *hostpb.HostMessage_Result:
			s.deliver(m.Result)
		case *hostpb.HostMessage_Locate:
			go s.locate(m.Locate)
		case *hostpb.HostMessage_Backfill:
			if s.f.cfg.OnBackfill != nil {
				s.f.cfg.OnBackfill(m.Backfill.GetRoom(), int(m.Backfill.GetSlots()))
			}
		default:
			s.f.metrics.HostRefusals.WithLabelValues("bad_message").Inc()
			err := status.Errorf(codes.InvalidArgument, "unexpected message %T after registration", msg.GetMsg())
			s.f.log.Warn("host sent a message out of turn: closing its stream", "host", s.name, "err", err)
			s.cancel(err)
			return err
		}
	}
}

// send writes queued messages until the session ends.
func (s *session) send() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-s.out:
			if err := s.stream.Send(m); err != nil {
				s.cancel(fmt.Errorf("send to host %s: %w", s.name, err))
				return
			}
		}
	}
}

// enqueue queues m without blocking; false when the queue is full or the
// session ended.
func (s *session) enqueue(m *hostpb.DispatcherMessage) bool {
	if s.ctx.Err() != nil {
		return false
	}
	select {
	case s.out <- m:
		return true
	default:
		return false
	}
}

// post sends a command whose answer nobody waits for.
func (s *session) post(cmd *hostpb.Command) {
	s.mu.Lock()
	s.nextID++
	cmd.Id = s.nextID
	s.mu.Unlock()
	if !s.enqueue(&hostpb.DispatcherMessage{Msg: &hostpb.DispatcherMessage_Command{Command: cmd}}) {
		s.f.log.Warn("command to host dropped: its queue is full or it is gone", "host", s.name)
	}
}

func (s *session) notifyMaxNum(n int) {
	s.post(&hostpb.Command{Cmd: &hostpb.Command_Maxnum{Maxnum: &hostpb.SetMaxNum{Maxnum: int32(n)}}})
}

// do sends cmd and waits for its result. An error result becomes the
// sentinel of its reason.
func (s *session) do(ctx context.Context, cmd *hostpb.Command) (*hostpb.CommandResult, error) {
	ch := make(chan *hostpb.CommandResult, 1)
	s.mu.Lock()
	s.nextID++
	cmd.Id = s.nextID
	s.pending[cmd.Id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, cmd.Id)
		s.mu.Unlock()
	}()
	if !s.enqueue(&hostpb.DispatcherMessage{Msg: &hostpb.DispatcherMessage_Command{Command: cmd}}) {
		return nil, fmt.Errorf("host %s: %w", s.name, ErrHostAway)
	}
	select {
	case res := <-ch:
		if res.GetErrorReason() != "" || res.GetError() != "" {
			return res, resultError(res.GetErrorReason(), res.GetError())
		}
		return res, nil
	case <-s.ctx.Done():
		return nil, fmt.Errorf("host %s: %w", s.name, ErrHostAway)
	case <-ctx.Done():
		return nil, fmt.Errorf("host %s: %w", s.name, ctx.Err())
	}
}

// resultError maps a result's reason to a sentinel error.
func resultError(reason, msg string) error {
	if e := proc.ErrorForReason(reason); e != nil {
		return fmt.Errorf("%w: %s", e, msg)
	}
	switch reason {
	case hostctl.ReasonNoCapacity:
		return fmt.Errorf("%w: %s", ErrNoCapacity, msg)
	case hostctl.ReasonUnknownProcess:
		return fmt.Errorf("%w: %s", ErrUnknownProcess, msg)
	case hostctl.ReasonUnknownKind:
		return fmt.Errorf("%w: %s", ErrUnknownKind, msg)
	}
	return fmt.Errorf("host: %s", msg)
}

func (s *session) deliver(res *hostpb.CommandResult) {
	s.mu.Lock()
	ch := s.pending[res.GetId()]
	s.mu.Unlock()
	if ch == nil {
		return // its caller gave up
	}
	select {
	case ch <- res:
	default:
	}
}

// spawnsInFlight returns the spawns of kind waiting for this host. Callers
// may hold the fleet's lock.
func (s *session) spawnsInFlight(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spawns[kind]
}

// expecting reports whether a spawn of kind is in flight.
func (s *session) expecting(kind string) bool { return s.spawnsInFlight(kind) > 0 }

// spawn asks the host for a process of kind and applies the answer.
func (s *session) spawn(ctx context.Context, kind string) (*hostpb.ProcessInfo, error) {
	s.mu.Lock()
	s.spawns[kind]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.spawns[kind]--
		s.mu.Unlock()
	}()
	res, err := s.do(ctx, &hostpb.Command{Cmd: &hostpb.Command_Spawn{Spawn: &hostpb.Spawn{Kind: kind}}})
	if err != nil {
		return nil, err
	}
	info := res.GetProcess()
	if info == nil {
		return nil, errors.New("the host answered a spawn without its process")
	}
	s.f.applyProcess(s, info, true)
	return info, nil
}

// locate answers a process's LocateMap through its host.
func (s *session) locate(req *hostpb.LocateMap) {
	ctx, cancel := context.WithTimeout(s.ctx, s.f.cfg.CommandTimeout)
	defer cancel()
	ans := &hostpb.LocateResult{Id: req.GetId()}
	pl, err := s.f.PlaceMap(ctx, req.GetMap())
	if err != nil {
		ans.ErrorReason, ans.Error = proc.Reason(err), err.Error()
		if ans.ErrorReason == "" && errors.Is(err, ErrNoCapacity) {
			ans.ErrorReason = hostctl.ReasonNoCapacity
		}
	} else {
		ans.Addr = pl.Addr()
	}
	s.enqueue(&hostpb.DispatcherMessage{Msg: &hostpb.DispatcherMessage_Located{Located: ans}})
}

// seen notes that the host spoke: its lease is renewed.
func (f *Fleet) seen(s *session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[s.name]
	if h == nil || h.sess != s {
		return
	}
	h.lastSeen = time.Now()
	if h.state == hostctl.HostLost {
		h.state = hostctl.HostConnected
		if h.draining {
			h.state = hostctl.HostDraining
		}
		h.since = time.Now()
		f.indexHostLocked(h)
		f.version++
		f.log.Info("host back within its session", "host", h.name)
		go f.publish(Event{Type: "host", Host: h.name, State: h.state.String(), Reason: "heartbeat"})
	}
}

// heartbeat checks the host's clock.
func (f *Fleet) heartbeat(s *session, hb *hostpb.Heartbeat) error {
	skew := time.Since(time.UnixMilli(hb.GetClockUnixMs()))
	f.mu.Lock()
	if h := f.hosts[s.name]; h != nil && h.sess == s {
		h.skew = skew
	}
	f.mu.Unlock()
	if skew > f.cfg.MaxClockSkew || skew < -f.cfg.MaxClockSkew {
		f.metrics.HostRefusals.WithLabelValues("clock").Inc()
		f.log.Warn("host clock off: closing its stream", "host", s.name, "skew", skew.Round(time.Millisecond), "max", f.cfg.MaxClockSkew)
		return status.Errorf(codes.FailedPrecondition, "clock off by %v (at most %v allowed)", skew.Round(time.Millisecond), f.cfg.MaxClockSkew)
	}
	return nil
}

// hasRooms reports whether processes of kind host rooms.
func hasRooms(kind string) bool { return slices.Contains(proc.Capabilities(kind), proc.PluginRooms) }

// applyProcess applies one process snapshot of s's host to the table.
// A process the dispatcher did not ask for (no spawn of its kind in
// flight, not a kind the host keeps itself) or on a port outside its
// kind's range is refused: logged, counted, and the host told to stop it.
// spawned is true for the answer of a spawn.
func (f *Fleet) applyProcess(s *session, info *hostpb.ProcessInfo, spawned bool) {
	k := Key{s.name, int(info.GetPort())}
	st := hostctl.StateFromPB(info.GetState())
	var ended, failed []string
	var gone *Proc
	f.mu.Lock()
	h := f.hosts[s.name]
	if h == nil || h.sess != s {
		f.mu.Unlock()
		return
	}
	p := f.procs[k]
	if p == nil {
		if st == hostctl.Gone {
			f.mu.Unlock()
			return
		}
		kc, ok := h.kinds[info.GetKind()]
		switch {
		case !ok:
			f.refuseLocked(s, info, "unknown_kind", "a kind the host did not register")
			f.mu.Unlock()
			return
		case k.Port < kc.FirstPort || k.Port > kc.LastPort:
			f.refuseLocked(s, info, "port_out_of_range", fmt.Sprintf("port outside its range %d-%d", kc.FirstPort, kc.LastPort))
			f.mu.Unlock()
			return
		case !spawned && !kc.Fixed && !s.expecting(info.GetKind()):
			f.refuseLocked(s, info, "unrequested", "a process the dispatcher never asked for")
			f.mu.Unlock()
			return
		}
		p = f.addLocked(h, info)
	}
	switch {
	case st == hostctl.Gone:
		failed = roomsOf(p)
		f.removeLocked(p)
		gone = p
	default:
		if !(p.State == hostctl.Draining && st == hostctl.Ready) {
			p.State = st
		}
		if pid := int(info.GetPid()); pid != 0 {
			p.Pid = pid
		}
		p.reported = int(info.GetLoad())
		p.setLoad()
		p.Conns = int(info.GetConnections())
		if p.Load > 0 {
			p.LastBusy = time.Now()
		}
		if p.Kind == proc.KindMap {
			maps := make(map[string]int, len(info.GetMaps()))
			for m, n := range info.GetMaps() {
				maps[m] = int(n)
			}
			p.Maps = maps
		}
		if hasRooms(p.Kind) {
			ended = f.reconcileRoomsLocked(p, info.GetRooms())
		}
		f.indexLocked(p)
	}
	f.version++
	f.mu.Unlock()
	if gone != nil {
		f.reportExit(gone, info.GetReason(), failed)
	}
	if f.cfg.OnRoomEnded != nil {
		for _, r := range ended {
			f.cfg.OnRoomEnded(r)
		}
	}
}

// reconcileRoomsLocked makes p's rooms the ones its host listed: a listed
// room the table does not know (and is not being assigned) is adopted (a
// restarted dispatcher learns its rooms so); a room the table holds that
// is no longer listed (and is not being assigned) has ended. Callers hold
// f.mu.
func (f *Fleet) reconcileRoomsLocked(p *Proc, rooms []string) (ended []string) {
	listed := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		listed[r] = true
		if _, ok := p.units[r]; !ok && !p.reserved[r] {
			p.units[r] = time.Now()
		}
	}
	for r := range p.units {
		if !listed[r] && !p.reserved[r] {
			delete(p.units, r)
			ended = append(ended, r)
		}
	}
	return ended
}

func roomsOf(p *Proc) []string {
	rooms := make([]string, 0, len(p.units))
	for r := range p.units {
		rooms = append(rooms, r)
	}
	slices.Sort(rooms)
	return rooms
}

// refuseLocked refuses a process: logged, counted, and its host told to
// stop it. Callers hold f.mu.
func (f *Fleet) refuseLocked(s *session, info *hostpb.ProcessInfo, reason, why string) {
	f.metrics.HostRefusals.WithLabelValues(reason).Inc()
	f.log.Warn("host reported a process the fleet refuses; telling the host to stop it", "host", s.name,
		"kind", info.GetKind(), "port", info.GetPort(), "pid", info.GetPid(), "why", why)
	s.post(&hostpb.Command{Cmd: &hostpb.Command_DrainProcess{DrainProcess: &hostpb.DrainProcess{
		Port: info.GetPort(), DeadlineUnixMs: time.Now().UnixMilli()}}})
}

// addLocked adds a row for a process of h. Callers hold f.mu.
func (f *Fleet) addLocked(h *host, info *hostpb.ProcessInfo) *Proc {
	started := time.Now()
	if ms := info.GetStartedUnixMs(); ms > 0 {
		started = time.UnixMilli(ms)
	}
	p := &Proc{Kind: info.GetKind(), Host: h.name, Advertise: h.advertise, Port: int(info.GetPort()), Pid: int(info.GetPid()),
		State: hostctl.Starting, MaxNum: f.maxnum, Local: h.local, Started: started, LastBusy: time.Now(), h: h,
		Maps: map[string]int{}, units: map[string]time.Time{}, reserved: map[string]bool{}}
	f.procs[p.Key()] = p
	f.byKind[p.Kind] = append(f.byKind[p.Kind], p)
	return p
}

// removeLocked drops p from the table. Callers hold f.mu.
func (f *Fleet) removeLocked(p *Proc) {
	if f.procs[p.Key()] == p {
		delete(f.procs, p.Key())
	}
	list := f.byKind[p.Kind]
	for i, q := range list {
		if q == p {
			f.byKind[p.Kind] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	p.State = hostctl.Gone
	f.indexLocked(p)
	f.version++
}

// reportExit counts, logs and publishes a process that left the table,
// and fails the rooms it still hosted.
func (f *Fleet) reportExit(p *Proc, reason string, rooms []string) {
	if reason == "" {
		reason = "exited"
	}
	f.metrics.Exits.WithLabelValues(p.Kind, reason).Inc()
	f.log.Warn("fleet process gone", "kind", p.Kind, "host", p.Host, "port", p.Port, "pid", p.Pid, "reason", reason, "rooms", len(rooms))
	f.publish(Event{Type: "exit", Kind: p.Kind, Host: p.Host, Port: p.Port, Pid: p.Pid, Reason: reason, Rooms: rooms})
	if len(rooms) > 0 && f.cfg.OnRoomsFailed != nil {
		f.mu.Lock()
		row := f.copyLocked(p)
		f.mu.Unlock()
		f.cfg.OnRoomsFailed(row, rooms)
	}
}
