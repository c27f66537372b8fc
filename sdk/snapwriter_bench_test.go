package sdk

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
)

// countingStore counts the snapshots written through it (one Set each or
// SetMulti) and closes reached when the count gets to target.
type countingStore struct {
	store.Store
	n       atomic.Int64
	target  atomic.Int64
	reached chan struct{}
}

func (s *countingStore) add(n int) {
	if s.n.Add(int64(n)) == s.target.Load() {
		s.reached <- struct{}{}
	}
}

func (s *countingStore) Set(ctx context.Context, it *store.Item) error {
	err := s.Store.Set(ctx, it)
	s.add(1)
	return err
}

func (s *countingStore) SetMulti(ctx context.Context, items []*store.Item) []error {
	errs := store.SetMulti(ctx, s.Store, items)
	s.add(len(items))
	return errs
}

// BenchmarkSnapshotSave1000Rooms: 1,000 rooms each save a 300-byte
// snapshot (a 3-fighter fight's is 296), then the writes are awaited; one
// op is one such round (ns/op, allocs/op cover the 1,000 saves and
// writes). goroutines is how many more goroutines ran just after the
// rooms saved than before (the writers). memory: an in-memory store
// (store.Memory, one Set per snapshot); memcached: an embedded memcached
// on loopback through the memcached client, with its key prefix.
func BenchmarkSnapshotSave1000Rooms(b *testing.B) {
	for _, kind := range []string{"memory", "memcached"} {
		b.Run(kind, func(b *testing.B) {
			var inner store.Store = store.NewMemory()
			if kind == "memcached" {
				inner = storetest.New(b)
			}
			st := &countingStore{Store: inner, reached: make(chan struct{}, 1)}
			signer, err := auth.NewSigner("snapshot-writer-bench-secret-0123456789")
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(nopBenchGame{}, Config{Game: "bench"}, nil, Deps{Signer: signer, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 1000
			rooms := make([]*Room, n)
			for i := range rooms {
				rooms[i] = newRoom(s, RoomSpec{ID: fmt.Sprintf("room-%04d", i)}, time.Now())
			}
			snap := make([]byte, 300)
			base := runtime.NumGoroutine()
			var extra int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				st.target.Store(int64(n * (i + 1)))
				for _, r := range rooms {
					r.snapshot.save(r, snap)
				}
				extra = max(extra, runtime.NumGoroutine()-base)
				<-st.reached
			}
			b.StopTimer()
			b.ReportMetric(float64(extra), "goroutines")
		})
	}
}

type nopBenchGame struct{}

func (nopBenchGame) NewRoom(*Room) (Handler, error) { return nil, fmt.Errorf("not used") }
