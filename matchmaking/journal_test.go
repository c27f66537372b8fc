package matchmaking

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store/storetest"
)

// A journal reopened on the same store numbers on from the last record,
// even one appended after the head was last saved, and Range skips
// deleted records.
func TestJournalReopensAfterItsLastRecord(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	j, err := OpenJournal(ctx, st, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1200 { // more than a probe batch past the saved head
		if _, err := j.Append(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Delete(ctx, 7); err != nil {
		t.Fatal(err)
	}
	j2, err := OpenJournal(ctx, st, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if j2.Next() != 1201 {
		t.Fatalf("reopened at %d, want 1201", j2.Next())
	}
	var got []int
	if err := j2.Range(ctx, j2.Low(), j2.Next(), func(seq uint64, v []byte) error {
		var n int
		_ = json.Unmarshal(v, &n)
		if uint64(n+1) != seq {
			t.Fatalf("record %d holds %d", seq, n)
		}
		got = append(got, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1199 {
		t.Fatalf("%d records, want 1199 (one deleted)", len(got))
	}
}
