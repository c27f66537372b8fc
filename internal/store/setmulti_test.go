package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// SetMulti stores every item (several pipelined round trips' worth) as
// Set would, readable afterwards with its value; an item that cannot be
// stored (a bad key, a value over memcached's item limit) fails alone
// with Set's error, and the items after it are still stored. DeleteMulti
// then deletes them all.
func TestSetMultiAndDeleteMulti(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			const n = 1000
			items := make([]*store.Item, n)
			keys := make([]string, n)
			for i := range items {
				keys[i] = fmt.Sprintf("multi:%04d", i)
				items[i] = &store.Item{Key: keys[i], Value: []byte(strings.Repeat("v", i%50) + fmt.Sprint(i)), TTL: time.Hour}
			}
			bad, large := 100, 700
			items[bad].Key, keys[bad] = "bad key", ""
			items[large].Value = make([]byte, 2<<20)
			errs := store.SetMulti(ctx, s, items)
			if len(errs) != n {
				t.Fatalf("%d errors for %d items, want one per item", len(errs), n)
			}
			if !errors.Is(errs[bad], store.ErrBadKey) {
				t.Errorf("bad key: %v, want ErrBadKey", errs[bad])
			}
			if name == "memcache" && !errors.Is(errs[large], store.ErrTooLarge) {
				t.Errorf("2 MiB value: %v, want ErrTooLarge", errs[large])
			}
			var ok []string
			for i, err := range errs {
				if i != bad && i != large {
					if err != nil {
						t.Fatalf("item %d: %v", i, err)
					}
					ok = append(ok, keys[i])
				}
			}
			got, err := s.GetMulti(ctx, ok)
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				if k == "" || i == large {
					continue
				}
				if it := got[k]; it == nil || string(it.Value) != string(items[i].Value) {
					t.Fatalf("%s: got %v, want %q", k, it, items[i].Value)
				}
			}
			if errs := store.SetMulti(ctx, s, items[:bad]); errs != nil {
				t.Fatalf("all stored: got errors %v, want nil", errs)
			}
			// DeleteMulti deletes them all; a missing key is no error.
			if errs := store.DeleteMulti(ctx, s, append(ok, "multi:missing")); errs != nil {
				t.Fatalf("delete multi: %v", errs)
			}
			if got, err := s.GetMulti(ctx, ok); err != nil || len(got) != 0 {
				t.Fatalf("after delete multi: %d items left (%v)", len(got), err)
			}
		})
	}
}
