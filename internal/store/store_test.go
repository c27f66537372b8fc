package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
)

func stores(t *testing.T) map[string]store.Store {
	return map[string]store.Store{
		"memory":   store.NewMemory(),
		"memcache": storetest.New(t),
	}
}

func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("get missing: %v", err)
			}
			if err := s.Set(ctx, &store.Item{Key: "a", Value: []byte("1")}); err != nil {
				t.Fatal(err)
			}
			it, err := s.Get(ctx, "a")
			if err != nil || string(it.Value) != "1" {
				t.Fatalf("get a: %v %v", it, err)
			}
			if err := s.Add(ctx, &store.Item{Key: "a", Value: []byte("2")}); !errors.Is(err, store.ErrNotStored) {
				t.Fatalf("add existing: %v", err)
			}
			it.Value = []byte("3")
			if err := s.CompareAndSwap(ctx, it); err != nil {
				t.Fatalf("cas: %v", err)
			}
			it.Value = []byte("4")
			if err := s.CompareAndSwap(ctx, it); !errors.Is(err, store.ErrCASConflict) {
				t.Fatalf("stale cas: %v", err)
			}
			got, _ := s.GetMulti(ctx, []string{"a", "nope"})
			if len(got) != 1 || string(got["a"].Value) != "3" {
				t.Fatalf("getmulti: %v", got)
			}
			if err := s.Delete(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("delete twice: %v", err)
			}
			if err := s.Set(ctx, &store.Item{Key: "bad key", Value: nil}); !errors.Is(err, store.ErrBadKey) {
				t.Fatalf("bad key: %v", err)
			}
			if err := s.Set(ctx, &store.Item{Key: strings.Repeat("k", 300)}); !errors.Is(err, store.ErrBadKey) {
				t.Fatalf("long key: %v", err)
			}
		})
	}
}

// TestCASOneWinner races many writers on one record: exactly one CAS on a
// given version may win.
func TestCASOneWinner(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.Set(ctx, &store.Item{Key: "race", Value: []byte("v0")}); err != nil {
				t.Fatal(err)
			}
			base, err := s.Get(ctx, "race")
			if err != nil {
				t.Fatal(err)
			}
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					it := *base
					it.Value = []byte("mine")
					if s.CompareAndSwap(ctx, &it) == nil {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d CAS winners, want 1", wins.Load())
			}
		})
	}
}
