package store

import (
	"fmt"
	"net"
	"strconv"

	"github.com/daangn/minimemcached"
)

// Embedded is a memcached-protocol server inside this process
// (github.com/daangn/minimemcached), for `arena up` without --memcache and
// for tests. It listens on 127.0.0.1 only.
type Embedded struct {
	m    *minimemcached.MiniMemcached
	addr string
}

// StartEmbedded starts an embedded memcached on port (0: any free port).
func StartEmbedded(port int) (*Embedded, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("start embedded memcached: bad port %d", port)
	}
	m, err := minimemcached.Run(&minimemcached.Config{Port: uint16(port)})
	if err != nil {
		return nil, fmt.Errorf("start embedded memcached: %w", err)
	}
	return &Embedded{m: m, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(m.Port())))}, nil
}

// Addr returns host:port to hand to memcached clients.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the server and drops its data.
func (e *Embedded) Close() { e.m.Close() }
