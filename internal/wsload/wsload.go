// Package wsload is a WebSocket client for load generators: many client
// connections served by a few epoll loops over raw non-blocking sockets,
// with no goroutine per connection and no per-message allocation.
//
// A load generator that runs on the same machine as the server it measures
// competes with it for the cores; with a goroutine (and a netpoller wake-up)
// per received frame, the generator alone can take as much CPU as the
// server. A Pool costs about one read(2) per batch of frames a connection
// received and one write(2) per frame sent.
//
// The client speaks RFC 6455 as a browser does: an HTTP/1.1 upgrade with a
// random key whose accept value is checked, masked frames with a fresh key
// per frame, answers to pings and close frames. It does not do TLS
// (ws:// only), compression, or fragmented messages (a fragmented message
// from the server closes the connection with a protocol error); arena's
// servers send neither.
//
// Pools need epoll: NewPool fails with errors.ErrUnsupported elsewhere than
// on Linux.
package wsload

import (
	"errors"
	"fmt"
)

// Handler receives a connection's messages. OnMessage runs on the
// connection's poll loop, one message at a time; data is only valid during
// the call, and a slow OnMessage delays every connection of that loop.
// OnClose is called exactly once, after the last OnMessage.
type Handler interface {
	OnMessage(c *Conn, data []byte)
	OnClose(c *Conn, err error)
}

// Errors.
var (
	// ErrClosed is returned by Send on a closed connection.
	ErrClosed = errors.New("wsload: connection closed")
	// ErrProtocol closes a connection whose server broke the framing rules
	// (a masked, fragmented or over-long frame, an unknown opcode).
	ErrProtocol = errors.New("wsload: protocol error")
)

// CloseError is the error OnClose gets when the server sent a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsload: closed by server: %d %s", e.Code, e.Reason)
}

// Frame opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// DefaultMaxMessage is the largest message a Pool accepts unless told
// otherwise (64 KiB, arena's limit).
const DefaultMaxMessage = 64 << 10

// appendMaskedFrame appends a final client frame: header, mask key and the
// payload masked with key.
func appendMaskedFrame(b []byte, op byte, payload []byte, key uint32) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|op, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|op, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|op, 0x80|127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	k := [4]byte{byte(key >> 24), byte(key >> 16), byte(key >> 8), byte(key)}
	b = append(b, k[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= k[i&3]
	}
	return b
}

// frameHeader parses a server frame header at the start of b. It returns
// the header length and payload length, or hl == 0 when b does not yet hold
// the whole header.
func frameHeader(b []byte) (fin bool, op byte, hl, pl int, err error) {
	if len(b) < 2 {
		return false, 0, 0, 0, nil
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		return fin, op, 0, 0, fmt.Errorf("%w: reserved bits set", ErrProtocol)
	}
	if b[1]&0x80 != 0 {
		return fin, op, 0, 0, fmt.Errorf("%w: masked server frame", ErrProtocol)
	}
	n := uint64(b[1] & 0x7f)
	hl = 2
	switch n {
	case 126:
		if len(b) < 4 {
			return fin, op, 0, 0, nil
		}
		n, hl = uint64(b[2])<<8|uint64(b[3]), 4
	case 127:
		if len(b) < 10 {
			return fin, op, 0, 0, nil
		}
		n = 0
		for _, x := range b[2:10] {
			n = n<<8 | uint64(x)
		}
		hl = 10
	}
	if n > 1<<40 {
		return fin, op, 0, 0, fmt.Errorf("%w: frame length %d", ErrProtocol, n)
	}
	return fin, op, hl, int(n), nil
}
