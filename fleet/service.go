package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
	"github.com/arena-game/arena/proto/procpb"
)

// registerTimeout bounds the wait for a host's Register.
const registerTimeout = 10 * time.Second

// Service returns the host-control gRPC service of f (proto/host.proto),
// for a grpc.Server on --host-listen and for the dispatcher's local host.
func (f *Fleet) Service() hostpb.HostControlServer { return &service{f: f} }

type service struct {
	hostpb.UnimplementedHostControlServer
	f *Fleet
}

// Connect is one host's session: authenticate, read Register, attach the
// host (taking its processes into the table), answer Registered, then
// serve the stream until it ends.
func (s *service) Connect(stream hostpb.HostControl_ConnectServer) error {
	f := s.f
	from := "unknown"
	if p, ok := peer.FromContext(stream.Context()); ok {
		from = p.Addr.String()
	}
	if !f.authorized(stream.Context()) {
		f.metrics.HostRefusals.WithLabelValues("token").Inc()
		f.log.Warn("host refused: wrong or missing fleet token", "from", from)
		return status.Error(codes.Unauthenticated, "wrong or missing fleet token")
	}
	reg, err := recvRegister(stream)
	if err != nil {
		f.metrics.HostRefusals.WithLabelValues("register").Inc()
		f.log.Warn("host refused: no valid registration", "from", from, "err", err)
		return err
	}
	skew := time.Since(time.UnixMilli(reg.GetClockUnixMs()))
	if skew > f.cfg.MaxClockSkew || skew < -f.cfg.MaxClockSkew {
		f.metrics.HostRefusals.WithLabelValues("clock").Inc()
		f.log.Warn("host refused: its clock is off", "host", reg.GetName(), "from", from, "skew", skew.Round(time.Millisecond), "max", f.cfg.MaxClockSkew)
		return status.Errorf(codes.FailedPrecondition, "clock off by %v (at most %v allowed): fix the host's time (NTP)", skew.Round(time.Millisecond), f.cfg.MaxClockSkew)
	}
	sess := newSession(f, reg.GetName(), reg.GetInstance(), stream)
	if err := f.attach(sess, reg, skew); err != nil {
		f.log.Warn("host refused", "host", reg.GetName(), "from", from, "err", err)
		return err
	}
	defer f.detach(sess)
	if err := stream.Send(&hostpb.DispatcherMessage{Msg: &hostpb.DispatcherMessage_Registered{Registered: f.registered()}}); err != nil {
		return err
	}
	f.log.Info("host connected", "host", reg.GetName(), "from", from, "advertise", reg.GetAdvertise(), "processes", len(reg.GetProcesses()))
	err = sess.run()
	switch {
	case errors.Is(err, errSessionClosed):
		return status.Error(codes.Aborted, err.Error())
	case status.Code(err) != codes.Unknown && status.Code(err) != codes.OK:
		f.log.Info("host stream ended", "host", reg.GetName(), "err", err)
		return err
	default:
		f.metrics.StreamEnds.WithLabelValues(streamEndReason(err)).Inc()
		f.log.Info("host stream ended", "host", reg.GetName(), "err", err)
		return nil
	}
}

// streamEndReason names how a stream ended, for the metric.
func streamEndReason(err error) string {
	switch {
	case err == nil:
		return "eof"
	case errors.Is(err, context.Canceled), status.Code(err) == codes.Canceled:
		return "canceled"
	}
	return "error"
}

// authorized checks the fleet token in the metadata, in constant time.
func (f *Fleet) authorized(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok && f.cfg.FleetToken != "" && auth.EqualSecret(strings.TrimSpace(t), f.cfg.FleetToken) {
			return true
		}
	}
	return false
}

// recvRegister reads and checks the first message.
func recvRegister(stream hostpb.HostControl_ConnectServer) (*hostpb.Register, error) {
	type result struct {
		m   *hostpb.HostMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		ch <- result{m, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(registerTimeout):
		return nil, status.Error(codes.DeadlineExceeded, "no registration within 10s")
	}
	if r.err != nil {
		return nil, r.err
	}
	reg := r.m.GetRegister()
	if reg == nil {
		return nil, status.Error(codes.InvalidArgument, "the first message must be a registration")
	}
	if err := checkRegister(reg); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return reg, nil
}

// checkRegister validates a registration's fields.
func checkRegister(reg *hostpb.Register) error {
	if !validName(reg.GetName()) {
		return fmt.Errorf("host name %q: want 1-64 of [A-Za-z0-9._-]", reg.GetName())
	}
	if reg.GetInstance() == "" || len(reg.GetInstance()) > 64 {
		return errors.New("host instance: want 1-64 bytes")
	}
	if a := reg.GetAdvertise(); a == "" || len(a) > 253 || strings.ContainsAny(a, " /\t\r\n") {
		return fmt.Errorf("advertised address %q: want a host name or IP", a)
	}
	if len(reg.GetKinds()) == 0 || len(reg.GetKinds()) > 64 {
		return errors.New("kinds: want 1-64")
	}
	for _, k := range reg.GetKinds() {
		if !validName(k.GetKind()) || k.GetFirstPort() < 1 || k.GetLastPort() > 65535 || k.GetFirstPort() > k.GetLastPort() || k.GetMaxProcesses() < 0 {
			return fmt.Errorf("kind %q: bad port range %d-%d or capacity %d", k.GetKind(), k.GetFirstPort(), k.GetLastPort(), k.GetMaxProcesses())
		}
	}
	if len(reg.GetProcesses()) > 100000 {
		return errors.New("too many processes")
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// attach makes sess the host's session and takes the processes it
// registered into the table. A name connected from another instance of a
// host that is still heartbeating is refused (ALREADY_EXISTS); the same
// instance (a reconnect) replaces its old session. Processes of the host
// the registration does not list are gone (their rooms failed).
func (f *Fleet) attach(sess *session, reg *hostpb.Register, skew time.Duration) error {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return status.Error(codes.Unavailable, "the dispatcher is stopping")
	}
	h := f.hosts[reg.GetName()]
	var old *session
	if h != nil && h.sess != nil {
		live := time.Since(h.lastSeen) < f.cfg.Lease
		if h.instance != reg.GetInstance() && live {
			f.mu.Unlock()
			f.metrics.HostRefusals.WithLabelValues("name_taken").Inc()
			return status.Errorf(codes.AlreadyExists, "a host named %q is connected (another instance, heartbeating): names are unique in the fleet", reg.GetName())
		}
		old = h.sess
	}
	if h == nil {
		h = &host{name: reg.GetName()}
		f.hosts[h.name] = h
	}
	h.instance, h.advertise, h.sess, h.skew = reg.GetInstance(), reg.GetAdvertise(), sess, skew
	h.local = f.local[h.advertise]
	h.draining = reg.GetDraining()
	h.state = hostctl.HostConnected
	if h.draining {
		h.state = hostctl.HostDraining
	}
	h.since, h.lastSeen, h.closedAt = time.Now(), time.Now(), time.Time{}
	h.kinds = map[string]KindCap{}
	for _, k := range reg.GetKinds() {
		h.kinds[k.GetKind()] = KindCap{FirstPort: int(k.GetFirstPort()), LastPort: int(k.GetLastPort()), Max: int(k.GetMaxProcesses()), Fixed: k.GetFixed()}
	}
	// Rows of this host keep their advertised address and locality.
	listed := map[int]bool{}
	for _, info := range reg.GetProcesses() {
		listed[int(info.GetPort())] = true
	}
	var gone []*Proc
	for _, p := range f.procs {
		if p.Host != h.name {
			continue
		}
		p.Advertise, p.Local = h.advertise, h.local
		if !listed[p.Port] {
			gone = append(gone, p)
		}
	}
	failed := map[*Proc][]string{}
	for _, p := range gone {
		failed[p] = roomsOf(p)
		f.removeLocked(p)
	}
	f.indexHostLocked(h)
	f.version++
	f.mu.Unlock()
	if old != nil {
		old.cancel(errSessionClosed)
	}
	for _, p := range gone {
		f.reportExit(p, "not registered by its host", failed[p])
	}
	// The registered processes were all started by some dispatcher of this
	// fleet: they are taken back as spawned.
	for _, info := range reg.GetProcesses() {
		f.applyProcess(sess, info, true)
	}
	f.metrics.HostConnects.Inc()
	f.publish(Event{Type: "host", Host: h.name, State: h.state.String(), Reason: "registered"})
	return nil
}

// detach ends sess: its host is away from now on (no new work); the
// supervisor removes it after the grace unless it comes back.
func (f *Fleet) detach(sess *session) {
	sess.cancel(nil)
	f.mu.Lock()
	h := f.hosts[sess.name]
	if h == nil || h.sess != sess {
		f.mu.Unlock()
		return
	}
	h.sess = nil
	h.closedAt = time.Now()
	f.indexHostLocked(h)
	f.version++
	f.mu.Unlock()
	f.publish(Event{Type: "host", Host: sess.name, State: "away", Reason: "stream closed"})
}

// registered is the answer to a registration: the start template.
func (f *Fleet) registered() *hostpb.Registered {
	f.mu.Lock()
	maxnum := f.maxnum
	f.mu.Unlock()
	d := f.cfg.Defaults
	d.MaxNum = maxnum
	r := &hostpb.Registered{Defaults: startTemplate(d), HeartbeatMs: int32(f.cfg.Heartbeat.Milliseconds()),
		LeaseMs: int32(f.cfg.Lease.Milliseconds()), ClockUnixMs: time.Now().UnixMilli(),
		Fight: d.Fight, Map: d.Map, Chat: d.Chat}
	for kind, cfg := range f.cfg.Games {
		r.Games = append(r.Games, &hostpb.GameConfig{Kind: kind, ConfigJson: cfg})
	}
	return r
}

// startTemplate is the wire form of the StartRequest template; the
// options of each kind travel beside it in Registered.
func startTemplate(d proc.StartRequest) *procpb.StartRequest {
	return &procpb.StartRequest{Memcache: d.Memcache, StorePrefix: d.StorePrefix, Secret: d.Secret,
		DatabaseDsn: d.DatabaseDSN, OutboxDir: d.OutboxDir, Maxnum: int32(d.MaxNum), AllowedOrigins: d.AllowedOrigins}
}
