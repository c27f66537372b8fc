package wsconn

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Frame opcodes written by the server-side writer.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// writeTimeout bounds one blocking write to the socket; a peer that takes
// longer to drain is disconnected. A variable so tests can shorten it.
var writeTimeout = 10 * time.Second

// writer is a server connection's outbound path. Frames are encoded into
// buf as they are queued; one goroutine at a time (started when the buffer
// goes from empty to non-empty) writes everything queued in a single
// write, swapping buffers so senders never wait on the socket. Under load
// many frames share one system call; an idle connection holds no goroutine.
type writer struct {
	nc      net.Conn
	rc      syscall.RawConn // for a non-blocking first attempt; nil: none
	scratch []byte          // frame buffer of the direct path
	mu      sync.Mutex
	buf     []byte // frames waiting
	spare   []byte // the other buffer, owned by the running flush
	frames  int    // frames in buf
	busy    bool   // a flush goroutine is running
	closing bool   // a close frame is queued: half-close after it
	// deadline is the write deadline last set (zero: none). The flush
	// goroutine sets it before its blocking writes; a direct write, which
	// never blocks, clears it, since a deadline left over from an earlier
	// flush would make the poller fail the write once it passed. Only one
	// of them runs at a time (a direct write needs !busy, under mu).
	deadline time.Time
}

// appendFrame appends an unmasked final frame (server to client).
func appendFrame(b []byte, op byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|op, byte(n))
	case n < 1<<16:
		b = append(b, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|op, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// enqueue adds one frame; it reports false when the queue already holds
// SendQueue data frames (the caller closes the connection). With the
// WriteNow option it first tries a direct write (see enqueueFrames).
func (c *Conn) enqueue(op byte, payload []byte) bool {
	return c.enqueueFrames(op, c.opt.WriteNow, payload)
}

// enqueueFrames adds one frame per payload, in order; it reports false
// when they do not fit under SendQueue data frames (the caller closes the
// connection). With direct, and nothing queued or being written, it first
// writes them at once with one non-blocking write: most of the time the
// socket has room and the frames leave without a goroutine; whatever the
// socket does not take is queued for the flush goroutine. Payloads are
// copied before it returns.
func (c *Conn) enqueueFrames(op byte, direct bool, payloads ...[]byte) bool {
	w := &c.w
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return true
	}
	data := op == opText
	if data && w.frames+len(payloads) > c.opt.SendQueue {
		w.mu.Unlock()
		return false
	}
	if direct && !w.busy && len(w.buf) == 0 && w.rc != nil {
		if !w.deadline.IsZero() {
			_ = w.nc.SetWriteDeadline(time.Time{})
			w.deadline = time.Time{}
		}
		frame := w.scratch[:0]
		for _, p := range payloads {
			frame = appendFrame(frame, op, p)
		}
		n, err := w.tryWrite(frame)
		if cap(frame) <= 4<<10 {
			w.scratch = frame[:0]
		}
		switch {
		case err != nil:
			w.buf, w.frames, w.closing = nil, 0, true
			w.mu.Unlock()
			c.closed.Store(true)
			_ = w.nc.Close()
			return true
		case n == len(frame):
			w.mu.Unlock()
			return true
		}
		// Partly written (or not at all): the rest goes to the queue
		// ahead of anything queued later.
		w.buf = append(w.buf, frame[n:]...)
	} else {
		for _, p := range payloads {
			w.buf = appendFrame(w.buf, op, p)
		}
	}
	if data {
		w.frames += len(payloads)
		c.pending.Store(int32(w.frames))
	}
	start := !w.busy
	w.busy = true
	w.mu.Unlock()
	if start {
		go c.flush()
	}
	return true
}

// tryWrite writes b without blocking: it returns how much the socket took
// (0 when it would block) and an error only for a broken connection.
func (w *writer) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				if !errors.Is(e, syscall.EAGAIN) {
					werr = e
				}
				break
			}
			n += m
		}
		return true // never wait for the socket: the flush goroutine does
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// closeFrame queues a close frame after everything already queued; once it
// is written the connection is half-closed, so the peer still reads every
// message sent before it (a full close with unread input would reset).
func (c *Conn) closeFrame(code uint16, reason string) {
	w := &c.w
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	p := make([]byte, 0, 2+len(reason))
	p = append(p, byte(code>>8), byte(code))
	p = append(p, reason...)
	w.buf = appendFrame(w.buf, opClose, p)
	w.closing = true
	start := !w.busy
	w.busy = true
	w.mu.Unlock()
	if start {
		go c.flush()
	}
}

// flush writes until the queue is empty.
func (c *Conn) flush() {
	w := &c.w
	for {
		w.mu.Lock()
		if len(w.buf) == 0 {
			w.busy = false
			closing := w.closing
			w.mu.Unlock()
			if closing {
				if tc, ok := w.nc.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				} else {
					_ = w.nc.Close()
				}
			}
			return
		}
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.frames = 0
		c.pending.Store(0)
		w.mu.Unlock()

		// Keep a deadline at least writeTimeout/2 ahead; moving it on
		// every write would cost a runtime timer update per frame batch.
		if now := time.Now(); now.Add(writeTimeout / 2).After(w.deadline) {
			w.deadline = now.Add(writeTimeout)
			_ = w.nc.SetWriteDeadline(w.deadline)
		}
		_, err := w.nc.Write(out)

		w.mu.Lock()
		if cap(out) <= 1<<10 { // keep small buffers; let bursts go
			w.spare = out[:0]
		}
		if err != nil {
			w.buf, w.frames, w.busy = nil, 0, false
			w.closing = true
			w.mu.Unlock()
			c.closed.Store(true)
			_ = w.nc.Close()
			return
		}
		w.mu.Unlock()
	}
}
