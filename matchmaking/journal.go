package matchmaking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// Journal is an append-only log kept in the shared store (memcached): a
// record per sequence number under "mm:NAME:SEQ", each with the journal's
// TTL, and a head record ("mm:NAME:head") with the next sequence number
// and the lowest one that may still be live. It survives the process: a
// dispatcher that restarts reads the head, probes past it for records
// written after the head's last save, and goes on numbering from there.
// One process appends to a journal at a time (the dispatcher). Records are
// read by sequence number (Range), so a reader can resume from a cursor.
//
// Backend tickets ("tickets") and backend assignments ("assignments")
// are journals: O(1) store operations per append or delete, and a restart
// reads the records of the last TTL.
type Journal struct {
	st   store.Store
	name string
	ttl  time.Duration

	mu      sync.Mutex
	next    uint64    // the next sequence number
	marks   []seqMark // (time, seq) once a second, to find the low mark
	savedAt time.Time // when the head was last written
}

type seqMark struct {
	at  time.Time
	seq uint64
}

type journalHead struct {
	Next uint64 `json:"next"`
	Low  uint64 `json:"low"`
}

// journalBatch is how many records one GetMulti reads.
const journalBatch = 500

// OpenJournal reads (or starts) the journal name in st whose records live
// for ttl.
func OpenJournal(ctx context.Context, st store.Store, name string, ttl time.Duration) (*Journal, error) {
	j := &Journal{st: st, name: name, ttl: ttl, next: 1}
	var h journalHead
	if _, err := store.GetJSON(ctx, st, j.key("head"), &h); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("open journal %s: %w", name, err)
	}
	if h.Next > 0 {
		j.next = h.Next
	}
	// Records appended after the head was last saved: probe forward until
	// a whole batch is missing.
	for {
		keys := make([]string, journalBatch)
		for i := range keys {
			keys[i] = j.key(strconv.FormatUint(j.next+uint64(i), 10))
		}
		got, err := st.GetMulti(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("open journal %s: %w", name, err)
		}
		if len(got) == 0 {
			break
		}
		last := uint64(0)
		for i, k := range keys {
			if got[k] != nil {
				last = j.next + uint64(i)
			}
		}
		j.next = last + 1
	}
	low := h.Low
	if low == 0 {
		low = 1
	}
	j.marks = []seqMark{{at: time.Now(), seq: low}}
	return j, nil
}

func (j *Journal) key(s string) string { return "mm:" + j.name + ":" + s }

// Next is the sequence number the next append gets.
func (j *Journal) Next() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next
}

// Append writes v (as JSON) as the next record and returns its sequence
// number.
func (j *Journal) Append(ctx context.Context, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("append to journal %s: %w", j.name, err)
	}
	seq := j.Reserve(1)
	if err := j.Put(ctx, seq, b); err != nil {
		return 0, err
	}
	return seq, nil
}

// Reserve takes the next n sequence numbers (n > 0) and returns the first:
// a batch numbers its records in its own order first, then writes them
// with Put from as many goroutines as it likes. A reserved number never
// written is a missing record to readers (as an expired one).
func (j *Journal) Reserve(n int) uint64 {
	j.mu.Lock()
	seq := j.next
	j.next += uint64(n)
	now := time.Now()
	if len(j.marks) == 0 || now.Sub(j.marks[len(j.marks)-1].at) >= time.Second {
		j.marks = append(j.marks, seqMark{at: now, seq: seq})
	}
	j.mu.Unlock()
	return seq
}

// Put writes record seq (a number Reserve returned) with the JSON value b.
func (j *Journal) Put(ctx context.Context, seq uint64, b []byte) error {
	if errs := j.PutMulti(ctx, seq, [][]byte{b}); errs != nil {
		return errs[0]
	}
	return nil
}

// PutMulti writes the records first, first+1, ... (numbers Reserve
// returned) with the JSON values vals, in few round trips (a store that
// pipelines writes, store.SetMulti). It returns nil when every record was
// written, else one error per record (nil for those written). It saves
// the head too when it was last saved a second ago or more.
func (j *Journal) PutMulti(ctx context.Context, first uint64, vals [][]byte) []error {
	items := make([]*store.Item, len(vals))
	for i, v := range vals {
		items[i] = &store.Item{Key: j.key(strconv.FormatUint(first+uint64(i), 10)), Value: v, TTL: j.ttl}
	}
	errs := store.SetMulti(ctx, j.st, items)
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("append to journal %s: %w", j.name, err)
		}
	}
	j.mu.Lock()
	now := time.Now()
	saveHead := now.Sub(j.savedAt) >= time.Second
	if saveHead {
		j.savedAt = now
	}
	j.mu.Unlock()
	if saveHead {
		_ = j.SaveHead(ctx)
	}
	return errs
}

// Delete removes record seq (a ticket matched or cancelled).
func (j *Journal) Delete(ctx context.Context, seq uint64) error {
	err := j.st.Delete(ctx, j.key(strconv.FormatUint(seq, 10)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete from journal %s: %w", j.name, err)
	}
	return nil
}

// DeleteMulti removes records seqs, in few round trips; failures are
// left to the records' TTL.
func (j *Journal) DeleteMulti(ctx context.Context, seqs []uint64) {
	keys := make([]string, len(seqs))
	for i, seq := range seqs {
		keys[i] = j.key(strconv.FormatUint(seq, 10))
	}
	store.DeleteMulti(ctx, j.st, keys)
}

// SaveHead writes the head: the next sequence number, and as the low mark
// the first sequence number appended within the last TTL.
func (j *Journal) SaveHead(ctx context.Context) error {
	j.mu.Lock()
	cut := time.Now().Add(-j.ttl)
	i := 0
	for i+1 < len(j.marks) && j.marks[i+1].at.Before(cut) {
		i++
	}
	j.marks = j.marks[i:]
	h := journalHead{Next: j.next, Low: j.marks[0].seq}
	j.mu.Unlock()
	b, _ := json.Marshal(h)
	if err := j.st.Set(ctx, &store.Item{Key: j.key("head"), Value: b}); err != nil {
		return fmt.Errorf("save journal %s head: %w", j.name, err)
	}
	return nil
}

// Low is the lowest sequence number that may hold a live record.
func (j *Journal) Low() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.marks[0].seq
}

// Range calls fn for every record from seq from up to (not including)
// to, in order; missing records (expired, deleted) are skipped. fn's error
// stops it.
func (j *Journal) Range(ctx context.Context, from, to uint64, fn func(seq uint64, v []byte) error) error {
	for lo := from; lo < to; lo += journalBatch {
		hi := min(lo+journalBatch, to)
		keys := make([]string, 0, hi-lo)
		for s := lo; s < hi; s++ {
			keys = append(keys, j.key(strconv.FormatUint(s, 10)))
		}
		got, err := j.st.GetMulti(ctx, keys)
		if err != nil {
			return fmt.Errorf("read journal %s: %w", j.name, err)
		}
		for i, k := range keys {
			if it := got[k]; it != nil {
				if err := fn(lo+uint64(i), it.Value); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
