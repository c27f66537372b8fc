package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
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

// fakeMemcached answers set commands with the replies script gives for
// each (by the command's index over the server's life); it counts the
// connections it accepted.
type fakeMemcached struct {
	ln       net.Listener
	conns    atomic.Int32
	commands atomic.Int32
}

func newFakeMemcached(t *testing.T, script func(n int) string) *fakeMemcached {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMemcached{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					var key string
					var flags, ttl, size int
					if _, err := fmt.Sscanf(line, "set %s %d %d %d\r\n", &key, &flags, &ttl, &size); err != nil {
						return
					}
					if _, err := io.CopyN(io.Discard, r, int64(size)+2); err != nil {
						return
					}
					if _, err := io.WriteString(c, script(int(f.commands.Add(1))-1)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return f
}

// A server whose reply to a pipelined set is none of memcached's (a
// broken proxy, a wrong service on the port) puts the connection out of
// step: the items answered before it are stored, that item and every one
// after it on the connection fail, and the connection is closed, never
// reused: the next SetMulti dials a new one and works. A SERVER_ERROR
// fails only its own item and keeps the connection in step.
func TestSetMultiUnexpectedReplyClosesTheConnection(t *testing.T) {
	const garbage, refused = 3, 1
	f := newFakeMemcached(t, func(n int) string {
		switch n {
		case refused:
			return "SERVER_ERROR out of memory storing object\r\n"
		case garbage:
			return "VALUE what 0 1\r\n"
		}
		return "STORED\r\n"
	})
	st, err := store.NewMemcache(store.MemcacheConfig{Addrs: []string{f.ln.Addr().String()}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]*store.Item, 6)
	for i := range items {
		items[i] = &store.Item{Key: fmt.Sprintf("k%d", i), Value: []byte("v"), TTL: time.Minute}
	}
	errs := store.SetMulti(context.Background(), st, items)
	if len(errs) != len(items) {
		t.Fatalf("errors = %v, want one per item", errs)
	}
	for i, err := range errs {
		switch {
		case i == refused && err == nil:
			t.Errorf("item %d: refused by SERVER_ERROR, but no error", i)
		case i != refused && i < garbage && err != nil:
			t.Errorf("item %d: %v; it was stored before the bad reply", i, err)
		case i >= garbage && err == nil:
			t.Errorf("item %d: no error, but its reply came after the connection went out of step", i)
		}
	}
	if !strings.Contains(fmt.Sprint(errs[garbage]), "VALUE what") {
		t.Errorf("item %d: %v; the error should quote the unexpected reply", garbage, errs[garbage])
	}
	// The out-of-step connection was closed: the next batch dials anew
	// and every item is stored.
	if errs := store.SetMulti(context.Background(), st, items[:2]); errs != nil {
		t.Fatalf("next SetMulti: %v", errs)
	}
	if n := f.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the connection out of step must not be reused", n)
	}
}
