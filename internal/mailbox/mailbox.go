// Package mailbox is arena's one mailbox type: the queue through which
// other goroutines hand messages to the single goroutine that owns some
// state (the dispatcher's matchmaker, a fight room, a map instance, a chat
// channel's shard).
//
// A Mailbox never blocks a sender and never starts a goroutine. It has a
// capacity and a policy for when it is full, chosen per use and documented
// there:
//
//   - Reject: Post returns ErrFull and the sender handles it (refuses the
//     request it was serving, answers "busy", closes a connection). For
//     commands, where dropping one silently would leave state wrong.
//   - DropOldest: Post discards the oldest queued message to make room and
//     counts it (Dropped). For snapshots and fan-out, where the newest
//     message matters most; capacity 1 coalesces to the latest.
//
// A message that must never be lost because it ends something the owner
// already admitted (a player's leave, the result of a handoff the owner
// started, a stop) is posted through a Reservation taken when that thing
// was admitted: a reserved post never fails for lack of room. The queue is
// then bounded by the capacity plus the reservations outstanding, and each
// use states what bounds those (for example, one per connected player).
//
// The owner waits on Ready in its select loop and takes every queued
// message at once with Take. When the owner returns it calls Close: later
// posts return ErrClosed at once, so nothing ever waits on an owner that
// is gone.
package mailbox

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Policy says what Post does when the mailbox is full.
type Policy uint8

const (
	// Reject makes Post return ErrFull; the message is not queued.
	Reject Policy = iota
	// DropOldest makes Post discard the oldest queued message (counted by
	// Dropped) and queue the new one; Post never returns ErrFull.
	DropOldest
)

func (p Policy) String() string {
	switch p {
	case Reject:
		return "reject"
	case DropOldest:
		return "drop-oldest"
	}
	return "unknown"
}

var (
	// ErrFull is returned by Post on a full mailbox with policy Reject.
	ErrFull = errors.New("mailbox full")
	// ErrClosed is returned by every post after Close.
	ErrClosed = errors.New("mailbox closed")
	// ErrUsed is returned by a Reservation's second Post.
	ErrUsed = errors.New("mailbox reservation already used")
)

// Mailbox is a bounded FIFO queue of messages of type T for one owner
// goroutine. Post, Reserve and Wake are safe from any goroutine; Ready,
// Take and Close are for the owner. The zero value is not usable: call New.
type Mailbox[T any] struct {
	policy   Policy
	capacity int
	quiet    bool
	ready    chan struct{}

	mu       sync.Mutex
	q        []T // queued messages are q[head:]
	head     int
	reserved int // messages queued through reservations, not counted against capacity
	closed   bool

	dropped  atomic.Uint64
	rejected atomic.Uint64
}

// Option changes a Mailbox made by New.
type Option func(*options)

type options struct{ quiet bool }

// Quiet makes Post and reserved posts not signal Ready: the owner takes
// the messages on its own schedule (a tick, or before handling another
// mailbox's message), or when a sender calls Wake.
func Quiet() Option { return func(o *options) { o.quiet = true } }

// New returns an empty mailbox holding up to capacity messages (at least
// 1) with the given policy when full.
func New[T any](capacity int, policy Policy, opts ...Option) *Mailbox[T] {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return &Mailbox[T]{
		policy:   policy,
		capacity: max(capacity, 1),
		quiet:    o.quiet,
		ready:    make(chan struct{}, 1),
	}
}

// Post queues v. It never blocks. It returns nil when v is queued (under
// DropOldest, possibly after discarding the oldest message), ErrFull when
// a Reject mailbox is full, and ErrClosed after Close.
func (m *Mailbox[T]) Post(v T) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if len(m.q)-m.head-m.reserved >= m.capacity {
		if m.policy == Reject {
			m.mu.Unlock()
			m.rejected.Add(1)
			return ErrFull
		}
		var zero T
		m.q[m.head] = zero
		m.head++
		m.dropped.Add(1)
	}
	m.push(v)
	m.mu.Unlock()
	m.signal()
	return nil
}

// push appends v, reusing the space before head once it is half the
// slice. m.mu is held.
func (m *Mailbox[T]) push(v T) {
	if m.head > 0 && len(m.q) == cap(m.q) && m.head >= len(m.q)/2 {
		n := copy(m.q, m.q[m.head:])
		clear(m.q[n:])
		m.q = m.q[:n]
		m.head = 0
	}
	m.q = append(m.q, v)
}

func (m *Mailbox[T]) signal() {
	if m.quiet {
		return
	}
	m.Wake()
}

// Wake makes Ready fire once even when nothing was posted (or the mailbox
// is Quiet). It never blocks.
func (m *Mailbox[T]) Wake() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// Ready fires after posts (and Wakes) the owner has not yet seen. A fire
// may find the mailbox already empty; take what is there with Take.
func (m *Mailbox[T]) Ready() <-chan struct{} { return m.ready }

// Take removes every queued message and returns them, oldest first. buf
// lends the mailbox storage for the messages that come next: pass the
// slice the previous Take returned (or nil) once done with its messages,
// so steady traffic allocates nothing. Take clears buf, so the messages
// it held are not kept alive.
func (m *Mailbox[T]) Take(buf []T) []T {
	clear(buf[:cap(buf)])
	buf = buf[:0]
	m.mu.Lock()
	var out []T
	if m.head == len(m.q) {
		out = buf
		if len(m.q) > 0 && cap(m.q) > 0 {
			clear(m.q)
			m.q = m.q[:0]
		}
	} else if m.head == 0 {
		out, m.q = m.q, buf
	} else {
		out = append(buf, m.q[m.head:]...)
		clear(m.q)
		m.q = m.q[:0]
	}
	m.head = 0
	m.reserved = 0
	m.mu.Unlock()
	return out
}

// Len reports how many messages are queued.
func (m *Mailbox[T]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.q) - m.head
}

// Cap reports the capacity given to New.
func (m *Mailbox[T]) Cap() int { return m.capacity }

// Dropped reports how many messages DropOldest has discarded.
func (m *Mailbox[T]) Dropped() uint64 { return m.dropped.Load() }

// Rejected reports how many posts returned ErrFull.
func (m *Mailbox[T]) Rejected() uint64 { return m.rejected.Load() }

// Close makes every later post return ErrClosed and returns the messages
// still queued, oldest first, for the owner to clean up after. Closing
// twice returns nothing the second time.
func (m *Mailbox[T]) Close() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	rest := m.q[m.head:]
	m.q, m.head, m.reserved = nil, 0, 0
	return rest
}

// Closed reports whether Close has been called.
func (m *Mailbox[T]) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Reservation is the right to post one message to a mailbox even when it
// is full. Take one when admitting whatever that message will end.
type Reservation[T any] struct {
	m    *Mailbox[T]
	used atomic.Bool
}

// Reserve returns a reservation for one message. Reservations cost no
// queue space until used; the use states what bounds how many are
// outstanding. Only Reject mailboxes take reservations (DropOldest could
// discard the reserved message): Reserve panics on a DropOldest mailbox.
func (m *Mailbox[T]) Reserve() *Reservation[T] {
	if m.policy != Reject {
		panic("mailbox: Reserve on a " + m.policy.String() + " mailbox")
	}
	return &Reservation[T]{m: m}
}

// Post queues v regardless of capacity and policy. It never blocks. It
// returns ErrUsed when the reservation was used before and ErrClosed after
// the mailbox's Close.
func (r *Reservation[T]) Post(v T) error {
	if !r.used.CompareAndSwap(false, true) {
		return ErrUsed
	}
	m := r.m
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.push(v)
	m.reserved++
	m.mu.Unlock()
	m.signal()
	return nil
}
