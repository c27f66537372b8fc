package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// MultiSetter is a Store that writes many items in few round trips.
type MultiSetter interface {
	// SetMulti stores every item, as Set would, and returns nil when all
	// were stored, else one error per item (nil for those stored).
	SetMulti(ctx context.Context, items []*Item) []error
}

// MultiDeleter is a Store that deletes many keys in few round trips.
type MultiDeleter interface {
	// DeleteMulti deletes every key (a missing one is no error) and
	// returns nil when all were deleted, else one error per key.
	DeleteMulti(ctx context.Context, keys []string) []error
}

// DeleteMulti deletes keys in s (a missing one is no error): in few round
// trips when s is a MultiDeleter, else with one Delete each. It returns
// nil when every key was deleted, else one error per key.
func DeleteMulti(ctx context.Context, s Store, keys []string) []error {
	if md, ok := s.(MultiDeleter); ok {
		return md.DeleteMulti(ctx, keys)
	}
	var errs []error
	for i, k := range keys {
		if err := s.Delete(ctx, k); err != nil && !errors.Is(err, ErrNotFound) {
			if errs == nil {
				errs = make([]error, len(keys))
			}
			errs[i] = err
		}
	}
	return errs
}

// DeleteMulti implements MultiDeleter for a prefixed store.
func (p *prefixed) DeleteMulti(ctx context.Context, keys []string) []error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = p.p + k
	}
	return DeleteMulti(ctx, p.s, full)
}

// SetMulti stores items in s: in few round trips when s is a
// MultiSetter, else with one Set each. It returns nil when every item was
// stored, else one error per item (nil for those stored).
func SetMulti(ctx context.Context, s Store, items []*Item) []error {
	if ms, ok := s.(MultiSetter); ok {
		return ms.SetMulti(ctx, items)
	}
	var errs []error
	for i, it := range items {
		if err := s.Set(ctx, it); err != nil {
			if errs == nil {
				errs = make([]error, len(items))
			}
			errs[i] = err
		}
	}
	return errs
}

// SetMulti implements MultiSetter for a prefixed store.
func (p *prefixed) SetMulti(ctx context.Context, items []*Item) []error {
	cp := make([]*Item, len(items))
	for i, it := range items {
		c := *it
		c.Key = p.p + it.Key
		cp[i] = &c
	}
	return SetMulti(ctx, p.s, cp)
}

// pipelineChunk is how many set commands one round trip of SetMulti
// carries: the replies to a chunk (8 bytes each) are read after it is
// written whole, which stays far below any socket buffer, so a server
// never blocks writing replies while SetMulti blocks writing commands.
const pipelineChunk = 128

// pipeConn is a connection SetMulti pipelines set commands on (apart from
// gomemcache's pool, which exposes none).
type pipeConn struct {
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	at time.Time // when it went idle
}

// pipes are one server's idle pipelining connections.
type pipes struct {
	mu   sync.Mutex
	idle []*pipeConn
}

// maxIdlePipes bounds a server's idle pipelining connections; one
// unused for pipeIdleFor is closed rather than reused.
const (
	maxIdlePipes = 4
	pipeIdleFor  = 30 * time.Second
)

func (m *Memcache) pipeConn(ctx context.Context, i int) (*pipeConn, error) {
	p := &m.pipes[i]
	p.mu.Lock()
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(pc.at) < pipeIdleFor {
			p.mu.Unlock()
			return pc, nil
		}
		pc.c.Close()
	}
	p.mu.Unlock()
	d := net.Dialer{Timeout: m.c.Timeout}
	a := m.ring.addrs[i]
	c, err := d.DialContext(ctx, a.Network(), a.String())
	if err != nil {
		return nil, err
	}
	return &pipeConn{c: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (m *Memcache) putPipeConn(i int, pc *pipeConn) {
	p := &m.pipes[i]
	pc.at = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < maxIdlePipes {
		p.idle = append(p.idle, pc)
		return
	}
	pc.c.Close()
}

// SetMulti implements MultiSetter: the items of each server go to it on
// one connection, pipelined pipelineChunk set commands per round trip
// (the servers in parallel), instead of a round trip per item. A failure
// is counted and named per item as Set's are; a connection that fails
// fails the rest of its server's items.
func (m *Memcache) SetMulti(ctx context.Context, items []*Item) []error {
	keys := make([]string, len(items))
	for k, it := range items {
		keys[k] = it.Key
	}
	return m.pipeline(ctx, "set", keys, func(w *bufio.Writer, k int) {
		it := items[k]
		w.WriteString("set ")
		w.WriteString(it.Key)
		w.WriteString(" 0 ")
		w.WriteString(strconv.FormatInt(int64(ttlSeconds(it.TTL)), 10))
		w.WriteByte(' ')
		w.WriteString(strconv.Itoa(len(it.Value)))
		w.WriteString("\r\n")
		w.Write(it.Value)
		w.WriteString("\r\n")
	}, func(line []byte) (bool, error) {
		switch {
		case bytes.Equal(line, []byte("STORED\r\n")):
			return true, nil
		case bytes.Equal(line, []byte("NOT_STORED\r\n")):
			return true, memcache.ErrNotStored
		}
		return false, nil
	})
}

// DeleteMulti implements MultiDeleter as SetMulti does: pipelined delete
// commands, a missing key no error.
func (m *Memcache) DeleteMulti(ctx context.Context, keys []string) []error {
	return m.pipeline(ctx, "delete", keys, func(w *bufio.Writer, k int) {
		w.WriteString("delete ")
		w.WriteString(keys[k])
		w.WriteString("\r\n")
	}, func(line []byte) (bool, error) {
		return bytes.Equal(line, []byte("DELETED\r\n")) || bytes.Equal(line, []byte("NOT_FOUND\r\n")), nil
	})
}

// pipeline sends the command write(k) for each key keys[k], grouped by
// server, and reads each one's reply line: answer says whether a line is
// a reply of the command (with its error: a sentinel of gomemcache's);
// SERVER_ERROR is one item's failure; any other line puts the connection
// out of step, and fails the rest of the server's items.
func (m *Memcache) pipeline(ctx context.Context, op string, keys []string, write func(*bufio.Writer, int), answer func([]byte) (bool, error)) []error {
	var errs []error
	var emu sync.Mutex
	fail := func(k int, err error) {
		emu.Lock()
		defer emu.Unlock()
		if errs == nil {
			errs = make([]error, len(keys))
		}
		errs[k] = err
	}
	groups := make(map[int][]int)
	for k, key := range keys {
		if !ValidKey(key) {
			fail(k, fmt.Errorf("%s %q: %w", op, key, ErrBadKey))
			continue
		}
		i := m.ring.index(key)
		groups[i] = append(groups[i], k)
	}
	var wg sync.WaitGroup
	for i, ks := range groups {
		wg.Go(func() {
			if err := m.acquire(ctx, i, op, keys[ks[0]]); err != nil {
				for _, k := range ks {
					fail(k, err)
				}
				return
			}
			defer m.release(i)
			server := m.ring.names[i]
			pc, err := m.pipeConn(ctx, i)
			for len(ks) > 0 && err == nil {
				chunk := ks[:min(len(ks), pipelineChunk)]
				ks, err = m.roundTrip(ctx, pc, chunk, ks, write, func(k int, line []byte) (bool, error) {
					if ok, aerr := answer(line); ok {
						if aerr != nil {
							fail(k, m.mapErr(op, keys[k], server, aerr))
						}
						return true, nil
					}
					if bytes.HasPrefix(line, []byte("SERVER_ERROR ")) {
						// An item the server refused (too large, out of
						// memory); the connection stays in step.
						fail(k, m.mapErr(op, keys[k], server, errors.New(string(bytes.TrimSpace(line)))))
						return true, nil
					}
					return false, fmt.Errorf("memcached answered %q", bytes.TrimSpace(line))
				})
			}
			if err != nil {
				if pc != nil {
					pc.c.Close()
				}
				for _, k := range ks {
					fail(k, m.mapErr(op, keys[k], server, err))
				}
				return
			}
			m.putPipeConn(i, pc)
		})
	}
	wg.Wait()
	return errs
}

// roundTrip writes chunk's commands (chunk is ks's head) and reads their
// replies; it returns the keys left: ks after chunk, or on a failure
// from the first command without its reply.
func (m *Memcache) roundTrip(ctx context.Context, pc *pipeConn, chunk, ks []int, write func(*bufio.Writer, int), reply func(int, []byte) (bool, error)) ([]int, error) {
	deadline := time.Now().Add(m.c.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := pc.c.SetDeadline(deadline); err != nil {
		return ks, err
	}
	for _, k := range chunk {
		write(pc.w, k)
	}
	if err := pc.w.Flush(); err != nil {
		return ks, err
	}
	for n, k := range chunk {
		line, err := pc.r.ReadSlice('\n')
		if err == nil {
			_, err = reply(k, line)
		}
		if err != nil {
			return ks[n:], err
		}
	}
	return ks[len(chunk):], nil
}
