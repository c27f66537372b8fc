package proc

import (
	"context"
	"sync"
	"sync/atomic"
)

// EventBuffer is how many events one watcher may have unread before
// further events to it are dropped.
const EventBuffer = 256

// Events is the event hub of a process: the process Publishes, and its
// Lifecycle.Watch returns Watch. Publish never blocks: an event for a
// watcher whose buffer (EventBuffer) is full is dropped and counted, and
// the host's Status polls correct the load it would have told. The zero
// value is ready to use.
type Events struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	dropped atomic.Int64
}

// Publish sends ev to every watcher without blocking.
func (e *Events) Publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.dropped.Add(1)
		}
	}
}

// Watchers returns how many watchers are subscribed.
func (e *Events) Watchers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// Dropped returns how many events were dropped for full watchers.
func (e *Events) Dropped() int64 { return e.dropped.Load() }

// Watch returns a channel of the events published from now until ctx
// ends; then the channel is closed.
func (e *Events) Watch(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, EventBuffer)
	e.mu.Lock()
	if e.subs == nil {
		e.subs = make(map[chan Event]struct{})
	}
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		delete(e.subs, ch)
		close(ch)
		e.mu.Unlock()
	})
	return ch, nil
}
