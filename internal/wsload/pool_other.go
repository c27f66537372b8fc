//go:build !linux

package wsload

import (
	"context"
	"errors"
)

// Pool is unavailable: it needs epoll.
type Pool struct{}

// Conn is unavailable: it needs epoll.
type Conn struct{ Value any }

// NewPool fails with errors.ErrUnsupported: pools need Linux's epoll.
func NewPool(loops, maxMessage int) (*Pool, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (p *Pool) Close() error { return nil }

// Dial fails with errors.ErrUnsupported.
func (p *Pool) Dial(ctx context.Context, rawURL string, h Handler) (*Conn, error) {
	return nil, errors.ErrUnsupported
}

// Send fails with ErrClosed.
func (c *Conn) Send(msg []byte) error { return ErrClosed }

// Close does nothing.
func (c *Conn) Close(code int, reason string) {}
