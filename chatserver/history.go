package chatserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// HistoryKey is the store key (under the arena's prefix) of a channel's
// recent history: a JSON object {"messages": [Message, ...]}, oldest first,
// at most the configured history size. World and announce history never
// expires; a room's expires RoomHistoryTTL after its last message.
func HistoryKey(channel string) string { return "chat:history:" + channel }

// RoomHistoryTTL is how long a room channel's history outlives its last
// message.
const RoomHistoryTTL = 24 * time.Hour

type historyRecord struct {
	Messages []json.RawMessage `json:"messages"`
}

// entry is one history message: its id (for de-duplication) and its
// encoding, which is byte for byte the frame its channel's members received.
type entry struct {
	id  string
	raw json.RawMessage
}

// historyLog persists channel history to the store. Channels append to it
// without waiting; one writer goroutine merges each channel's new entries
// into its record with compare-and-swap (so concurrent writers, e.g. a
// second chat server on the same store, never lose each other's messages)
// and coalesces bursts into one write. Load merges what is stored with what
// is still waiting to be written, so a channel re-created right after its
// last member left sees everything.
type historyLog struct {
	st   store.Store
	size int
	log  *slog.Logger
	m    *metrics

	mu       sync.Mutex
	pending  map[string][]entry
	inflight map[string][]entry
	closed   bool
	wake     chan struct{}
	done     chan struct{}
}

func newHistoryLog(st store.Store, size int, log *slog.Logger, m *metrics) *historyLog {
	h := &historyLog{
		st: st, size: size, log: log, m: m,
		pending:  make(map[string][]entry),
		inflight: make(map[string][]entry),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go h.run()
	return h
}

// Append queues e to be written to channel's history. It never blocks on
// the store. After close it drops e.
func (h *historyLog) Append(channel string, e entry) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	p := append(h.pending[channel], e)
	if len(p) > h.size {
		p = append(p[:0:0], p[len(p)-h.size:]...)
	}
	h.pending[channel] = p
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Load returns channel's last history-size entries, oldest first: the
// stored record merged with entries not yet written.
func (h *historyLog) Load(ctx context.Context, channel string) ([]entry, error) {
	stored, _, err := h.read(ctx, channel)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	h.mu.Lock()
	extra := append(append([]entry(nil), h.inflight[channel]...), h.pending[channel]...)
	h.mu.Unlock()
	return h.merge(stored, extra), nil
}

func (h *historyLog) merge(list, extra []entry) []entry {
	if len(extra) > 0 {
		seen := make(map[string]bool, len(list))
		for _, e := range list {
			seen[e.id] = true
		}
		for _, e := range extra {
			if !seen[e.id] {
				seen[e.id] = true
				list = append(list, e)
			}
		}
	}
	if len(list) > h.size {
		list = list[len(list)-h.size:]
	}
	return list
}

// read returns the stored entries and the record's CAS version.
func (h *historyLog) read(ctx context.Context, channel string) ([]entry, uint64, error) {
	it, err := h.st.Get(ctx, HistoryKey(channel))
	if err != nil {
		return nil, 0, fmt.Errorf("read history %s: %w", channel, err)
	}
	var rec historyRecord
	if err := json.Unmarshal(it.Value, &rec); err != nil {
		// A corrupt record is replaced by the next write rather than
		// blocking the channel forever.
		h.log.Warn("chat history record is corrupt; starting it afresh", "channel", channel, "err", err)
		return nil, it.CAS, nil
	}
	out := make([]entry, 0, len(rec.Messages))
	for _, raw := range rec.Messages {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &head) != nil || head.ID == "" {
			continue
		}
		out = append(out, entry{id: head.ID, raw: raw})
	}
	return out, it.CAS, nil
}

// write merges entries into channel's record with compare-and-swap,
// retrying on conflicts.
func (h *historyLog) write(ctx context.Context, channel string, entries []entry) error {
	var ttl time.Duration
	if strings.HasPrefix(channel, RoomPrefix) {
		ttl = RoomHistoryTTL
	}
	for attempt := 0; attempt < 16; attempt++ {
		list, cas, err := h.read(ctx, channel)
		fresh := errors.Is(err, store.ErrNotFound)
		if err != nil && !fresh {
			return err
		}
		list = h.merge(list, entries)
		rec := historyRecord{Messages: make([]json.RawMessage, len(list))}
		for i, e := range list {
			rec.Messages[i] = e.raw
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("write history %s: %w", channel, err)
		}
		it := &store.Item{Key: HistoryKey(channel), Value: b, TTL: ttl, CAS: cas}
		if fresh {
			err = h.st.Add(ctx, it)
		} else {
			err = h.st.CompareAndSwap(ctx, it)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, store.ErrCASConflict), errors.Is(err, store.ErrNotStored), errors.Is(err, store.ErrNotFound):
			continue
		default:
			return fmt.Errorf("write history %s: %w", channel, err)
		}
	}
	return fmt.Errorf("write history %s: %w", channel, store.ErrCASConflict)
}

func (h *historyLog) run() {
	defer close(h.done)
	for {
		<-h.wake
		h.mu.Lock()
		batch := h.pending
		h.pending = make(map[string][]entry)
		for ch, es := range batch {
			h.inflight[ch] = es
		}
		closed := h.closed
		h.mu.Unlock()
		for ch, es := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := h.write(ctx, ch, es)
			cancel()
			if err != nil {
				h.m.historyErrors.Inc()
				h.log.Warn("chat history not saved", "channel", ch, "messages", len(es), "err", err)
			}
			h.mu.Lock()
			delete(h.inflight, ch)
			h.mu.Unlock()
		}
		if closed {
			return
		}
	}
}

// Flush waits until every entry appended so far is written (or ctx is
// done).
func (h *historyLog) Flush(ctx context.Context) error {
	for {
		h.mu.Lock()
		idle := len(h.pending) == 0 && len(h.inflight) == 0
		h.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush chat history: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close writes everything pending and stops the writer, waiting at most
// until ctx is done.
func (h *historyLog) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		// Wake the writer once more; it drains and exits.
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close chat history: %w", ctx.Err())
	}
}
