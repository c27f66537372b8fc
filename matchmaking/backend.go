package matchmaking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// BackendTickets keeps the tickets backends made in a journal in the
// shared store, so a dispatcher that restarts queues them again (with
// their own creation and expiry times) and matches them. A ticket's record
// goes when it is matched, cancelled or expires (or by itself, at its
// expiry: the record's TTL is the journal's, the longest ticket TTL).
type BackendTickets struct {
	j    *Journal
	mu   sync.Mutex
	seqs map[string]uint64 // uuid -> record
}

// backendRecord is a backend ticket as stored.
type backendRecord struct {
	Player  Player       `json:"player"`
	Profile string       `json:"profile"`
	Search  SearchFields `json:"search_fields"`
	Channel string       `json:"channel_name,omitempty"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
}

// NewBackendTickets keeps backend tickets in j.
func NewBackendTickets(j *Journal) *BackendTickets {
	return &BackendTickets{j: j, seqs: map[string]uint64{}}
}

// Save records a backend ticket just queued (st is its queue status).
func (b *BackendTickets) Save(ctx context.Context, e Enqueue, st QueueStatus) error {
	rec := backendRecord{Player: e.Player, Profile: st.Profile, Search: e.Search, Channel: e.Channel, Created: st.Since, Expires: st.Expires}
	seq, err := b.j.Append(ctx, rec)
	if err != nil {
		return fmt.Errorf("save backend ticket %s: %w", e.Player.UUID, err)
	}
	b.mu.Lock()
	old, had := b.seqs[e.Player.UUID]
	b.seqs[e.Player.UUID] = seq
	b.mu.Unlock()
	if had {
		_ = b.j.Delete(ctx, old)
	}
	return nil
}

// Forget deletes uuid's record (matched, cancelled, expired).
func (b *BackendTickets) Forget(ctx context.Context, uuid string) {
	b.mu.Lock()
	seq, ok := b.seqs[uuid]
	delete(b.seqs, uuid)
	b.mu.Unlock()
	if ok {
		_ = b.j.Delete(ctx, seq)
	}
}

// ForgetMulti deletes the records of uuids (matched together), in few
// round trips.
func (b *BackendTickets) ForgetMulti(ctx context.Context, uuids []string) {
	seqs := make([]uint64, 0, len(uuids))
	b.mu.Lock()
	for _, u := range uuids {
		if seq, ok := b.seqs[u]; ok {
			delete(b.seqs, u)
			seqs = append(seqs, seq)
		}
	}
	b.mu.Unlock()
	if len(seqs) > 0 {
		b.j.DeleteMulti(ctx, seqs)
	}
}

// Restore queues again every live record (oldest first) in m, skipping
// those whose player is queued or in a room already and those expired. It
// returns how many it queued.
func (b *BackendTickets) Restore(ctx context.Context, m *Matchmaker) (int, error) {
	type live struct {
		seq uint64
		rec backendRecord
	}
	var recs []live
	err := b.j.Range(ctx, b.j.Low(), b.j.Next(), func(seq uint64, v []byte) error {
		var r backendRecord
		if json.Unmarshal(v, &r) == nil && r.Player.UUID != "" {
			recs = append(recs, live{seq, r})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("restore backend tickets: %w", err)
	}
	sort.SliceStable(recs, func(i, k int) bool { return recs[i].rec.Created.Before(recs[k].rec.Created) })
	now := time.Now()
	n := 0
	for _, l := range recs {
		r := l.rec
		if !r.Expires.After(now) {
			_ = b.j.Delete(ctx, l.seq)
			continue
		}
		_, err := m.Enqueue(ctx, Enqueue{Player: r.Player, Profile: r.Profile, Search: r.Search, Source: SourceBackend,
			Channel: r.Channel, Created: r.Created, Expires: r.Expires})
		switch {
		case err == nil:
			b.mu.Lock()
			b.seqs[r.Player.UUID] = l.seq
			b.mu.Unlock()
			n++
		case errors.Is(err, ErrAlreadyQueued), errors.Is(err, ErrInRoom):
		case errors.Is(err, ErrUnknownProfile), errors.Is(err, ErrBadSearchFields), errors.Is(err, ErrBadParty), errors.Is(err, ErrPartyTooLarge):
			_ = b.j.Delete(ctx, l.seq) // the profiles changed since: it can never queue
		default:
			return n, fmt.Errorf("restore backend tickets: %w", err)
		}
	}
	return n, nil
}
