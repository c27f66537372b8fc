package dispatcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/test/bufconn"

	"github.com/arena-game/arena/proto/hostpb"
)

// memListener is the in-memory connection between the dispatcher's
// host-control service and its local host: the same service, the same
// stream, no socket.
type memListener struct{ lis *bufconn.Listener }

func newMemListener() *memListener { return &memListener{lis: bufconn.Listen(1 << 20)} }

// dial is the local host's Dial.
func (m *memListener) dial(context.Context) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///local-host",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return m.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// listenHosts binds --host-listen ("none": no listener, only the local
// host).
func (d *Dispatcher) listenHosts() (net.Listener, error) {
	if d.cfg.HostListen == "none" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", d.cfg.HostListen)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: listen for hosts: %w", err)
	}
	d.mu.Lock()
	d.hostAddr = ln.Addr().String()
	d.mu.Unlock()
	return ln, nil
}

// HostAddr returns the bound host-control address ("" without one).
func (d *Dispatcher) HostAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hostAddr
}

// serveHosts serves the host-control service on ln (TLS when configured)
// and, for the local host, in memory: one service, one code path.
func (d *Dispatcher) serveHosts(ctx context.Context, wg *sync.WaitGroup, errc chan<- error, ln net.Listener) (*hostServers, error) {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(16 << 20),
		// Hosts ping every 10 s at most; a stream stays up while a host
		// is cut off (its heartbeats, not the transport, decide its lease).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
	hs := &hostServers{}
	if ln != nil {
		netOpts := opts
		if d.cfg.HostTLSCert != "" {
			cert, err := tls.LoadX509KeyPair(d.cfg.HostTLSCert, d.cfg.HostTLSKey)
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("dispatcher: host TLS: %w", err)
			}
			netOpts = append(netOpts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
		}
		hs.net = grpc.NewServer(netOpts...)
		hostpb.RegisterHostControlServer(hs.net, d.fleet.Service())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.net.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("dispatcher: host control: %w", err)
			}
		}()
	}
	if d.localConn != nil {
		hs.mem = grpc.NewServer(opts...)
		hostpb.RegisterHostControlServer(hs.mem, d.fleet.Service())
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = hs.mem.Serve(d.localConn.lis)
		}()
	}
	return hs, nil
}

// hostServers are the host-control servers (network and in-memory).
type hostServers struct{ net, mem *grpc.Server }

// Stop closes every host stream at once: the hosts keep their processes.
func (h *hostServers) Stop() {
	if h.net != nil {
		h.net.Stop()
	}
	if h.mem != nil {
		h.mem.Stop()
	}
}
