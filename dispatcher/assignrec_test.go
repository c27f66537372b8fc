package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/matchmaking"
)

// Batches recorded concurrently (two large batches and single backfills
// at once, each pipelining its writes) reach a consumer of the resumable
// stream in cursor order without a gap: a consumer dropped for falling
// behind resumes after the last cursor it saw and misses nothing.
func TestConcurrentBatchesStreamInCursorOrder(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.Tick = time.Hour })
	// A first record, so that the consumer can resume after a cursor.
	td.recordAssignments([]matchmaking.Matched{{Backend: true, Msg: matchmaking.MatchMsg{Type: "match", UUID: "first"}}})
	start := td.assignments.published() - 1
	if start == 0 {
		t.Fatal("the first record was not published")
	}

	const batches, perBatch, singles = 2, 1500, 50
	want := batches*perBatch + singles
	var mu sync.Mutex
	var got []assignment
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		after := start
		for ctx.Err() == nil {
			err := td.followAssignments(ctx, after, func(a assignment) error {
				mu.Lock()
				got = append(got, a)
				mu.Unlock()
				after = a.cursor
				return nil
			})
			if err != nil && !errors.Is(err, errFellBehind) {
				t.Errorf("follow assignments after %d: %v", after, err)
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for b := range batches {
		wg.Go(func() {
			ms := make([]matchmaking.Matched, perBatch)
			for i := range ms {
				ms[i] = matchmaking.Matched{Backend: true, Msg: matchmaking.MatchMsg{Type: "match", UUID: fmt.Sprintf("b%d-%05d", b, i), Room: fmt.Sprintf("r%d", b)}}
			}
			td.recordAssignments(ms)
		})
	}
	wg.Go(func() {
		for i := range singles {
			td.recordAssignments([]matchmaking.Matched{{Backend: true, Msg: matchmaking.MatchMsg{Type: "match", UUID: fmt.Sprintf("s%05d", i)}}})
		}
	})
	wg.Wait()
	waitfor.Cond(t, fmt.Sprintf("%d assignments on the stream", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= want
	})
	cancel()
	<-followed

	mu.Lock()
	defer mu.Unlock()
	if len(got) != want {
		t.Fatalf("got %d assignments, want %d", len(got), want)
	}
	seen := map[string]bool{}
	pos := map[string]int{} // a batch's players keep the batch's order
	for i, a := range got {
		if wantCursor := start + 1 + uint64(i); a.cursor != wantCursor {
			t.Fatalf("assignment %d (%s) has cursor %d, want %d: a gap or a reordering", i, a.msg.UUID, a.cursor, wantCursor)
		}
		if seen[a.msg.UUID] {
			t.Fatalf("%s twice", a.msg.UUID)
		}
		seen[a.msg.UUID] = true
		if a.msg.Room != "" {
			var n int
			if _, err := fmt.Sscanf(a.msg.UUID[3:], "%d", &n); err != nil || n != pos[a.msg.Room] {
				t.Fatalf("%s out of its batch's order (next of room %s: %d)", a.msg.UUID, a.msg.Room, pos[a.msg.Room])
			}
			pos[a.msg.Room]++
		}
	}
	// The journal holds them too, in the same order.
	i := 0
	err := td.assignLog.Range(context.Background(), start+1, td.assignments.published(), func(seq uint64, v []byte) error {
		if seq != got[i].cursor {
			return fmt.Errorf("journal record %d where the stream had %d", seq, got[i].cursor)
		}
		i++
		return nil
	})
	if err != nil || i != want {
		t.Fatalf("journal: %d records read, want %d (%v)", i, want, err)
	}
}
