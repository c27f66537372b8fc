package matchmaking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/arena-game/arena/proto/matchthrift"
)

// ErrThriftPublic: a --thrift address that is not loopback without
// --thrift-insecure-public (the seed's protocol has no authentication).
var ErrThriftPublic = errors.New("thrift intake: address is not loopback (the seed's protocol has no authentication; --thrift-insecure-public allows it)")

// Limits of the Thrift intake.
const (
	// ThriftMaxMessage bounds one Thrift message: add_player's five
	// fields fit many times over; a larger length prefix is refused and
	// the connection closed.
	ThriftMaxMessage = 16 << 10
	// ThriftMaxConns bounds connections served at once; more wait in the
	// listen backlog.
	ThriftMaxConns = 256
	// ThriftIdleTimeout closes a connection silent this long, or one that
	// stops in the middle of a message.
	ThriftIdleTimeout = 30 * time.Second
)

// AddPlayer is what the Thrift intake does with one add_player call: queue
// the player as a backend ticket of the default profile, with the score
// the caller vouches for. An error is answered as a Thrift application
// exception with its text.
type AddPlayer func(ctx context.Context, score int32, uuid, username, photo, channelName string) error

// CheckThriftAddr refuses an address that would listen beyond loopback
// unless public is set.
func CheckThriftAddr(addr string, public bool) error {
	if public {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("thrift intake: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrThriftPublic, addr)
}

// ThriftIntake serves the seed's Thrift IDL (proto/thrift/match.thrift:
// `service Match { i32 add_player(1: i32 score, 2: string uuid, 3: string
// username, 4: string photo, 5: string channel_name) }`) over
// TBinaryProtocol with a buffered transport, as the seed's Python match
// server did, so the seed's generated client works unchanged. add_player
// answers 0 once the player is queued.
type ThriftIntake struct {
	Add AddPlayer
	Log *slog.Logger
}

// Serve accepts connections on ln until ctx is done. A message over
// ThriftMaxMessage, a truncated one or a malformed one closes its
// connection; an unknown method is answered with Thrift's
// UNKNOWN_METHOD application exception.
func (ti *ThriftIntake) Serve(ctx context.Context, ln net.Listener) error {
	conf := &thrift.TConfiguration{
		MaxMessageSize:     ThriftMaxMessage,
		MaxFrameSize:       ThriftMaxMessage,
		SocketTimeout:      ThriftIdleTimeout,
		TBinaryStrictRead:  thrift.BoolPtr(false),
		TBinaryStrictWrite: thrift.BoolPtr(true),
	}
	proc := matchthrift.NewMatchProcessor(thriftHandler{ti})
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var mu sync.Mutex
	sem := make(chan struct{}, ThriftMaxConns)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("thrift intake: accept: %w", err)
		}
		mu.Lock()
		conns[conn] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ti.serveConn(ctx, conn, conf, proc)
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
			conn.Close()
		}()
	}
}

// serveConn answers calls on one connection until it closes or breaks a
// limit.
func (ti *ThriftIntake) serveConn(ctx context.Context, conn net.Conn, conf *thrift.TConfiguration, proc thrift.TProcessor) {
	sock := thrift.NewTSocketFromConnConf(conn, conf)
	trans := thrift.NewTBufferedTransport(sock, 4096)
	prot := thrift.NewTBinaryProtocolConf(trans, conf)
	for ctx.Err() == nil {
		ok, err := proc.Process(ctx, prot, prot)
		if err == nil || ok {
			continue // answered (a refused add_player as an application exception)
		}
		var ae thrift.TApplicationException
		if errors.As(err, &ae) && ae.TypeId() == thrift.UNKNOWN_METHOD {
			continue // answered with UNKNOWN_METHOD; the stream is intact
		}
		var te thrift.TTransportException
		if !errors.As(err, &te) || te.TypeId() != thrift.END_OF_FILE {
			ti.Log.Debug("thrift connection closed", "remote", conn.RemoteAddr().String(), "err", err)
		}
		return
	}
}

// thriftHandler implements the generated Match interface.
type thriftHandler struct{ ti *ThriftIntake }

// AddPlayer implements matchthrift.Match.
func (h thriftHandler) AddPlayer(ctx context.Context, score int32, uuid, username, photo, channelName string) (int32, error) {
	if err := h.ti.Add(ctx, score, uuid, username, photo, channelName); err != nil {
		return 0, err
	}
	return 0, nil
}
