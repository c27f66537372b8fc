package chatserver

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// player is one uuid's presence on this server: its connections (private
// messages go to all of them), how many of them are in world (for the
// online count) and the token bucket they share.
type player struct {
	uuid   string
	conns  []*client
	world  int
	bucket *rate.Limiter
	left   time.Time // when its last connection closed (kept a while; see sweep)
}

// players is the registry of connected players, sharded by uuid under
// mutexes (each operation touches one player).
type players struct {
	rate   float64
	burst  int
	seed   maphash.Seed
	shards [64]playerShard
	online atomic.Int64 // distinct players with a connection in world
	conns  atomic.Int64
}

type playerShard struct {
	mu sync.Mutex
	m  map[string]*player
}

func newPlayers(rate float64, burst int) *players {
	p := &players{rate: rate, burst: burst, seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].m = make(map[string]*player)
	}
	return p
}

func (ps *players) shard(uuid string) *playerShard {
	return &ps.shards[maphash.String(ps.seed, uuid)%uint64(len(ps.shards))]
}

// add registers c under its uuid and returns the (shared) player.
func (ps *players) add(c *client) *player {
	sh := ps.shard(c.sender.UUID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.m[c.sender.UUID]
	if p == nil {
		p = &player{uuid: c.sender.UUID, bucket: rate.NewLimiter(rate.Limit(ps.rate), ps.burst)}
		sh.m[c.sender.UUID] = p
	}
	p.conns = append(p.conns, c)
	ps.conns.Add(1)
	return p
}

// remove forgets c; the player goes when its last connection does.
func (ps *players) remove(c *client) {
	sh := ps.shard(c.sender.UUID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.m[c.sender.UUID]
	if p == nil {
		return
	}
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			ps.conns.Add(-1)
			break
		}
	}
	if len(p.conns) == 0 {
		// Keep the entry, and with it the spent bucket, for a while: a
		// flooder must not get a fresh burst by reconnecting.
		p.left = time.Now()
	}
}

// sweep forgets players without connections whose last one closed before
// cutoff.
func (ps *players) sweep(cutoff time.Time) {
	for i := range ps.shards {
		sh := &ps.shards[i]
		sh.mu.Lock()
		for uuid, p := range sh.m {
			if len(p.conns) == 0 && p.left.Before(cutoff) {
				delete(sh.m, uuid)
			}
		}
		sh.mu.Unlock()
	}
}

// worldDelta records one of p's connections joining (+1) or leaving (-1)
// world and keeps the distinct online count.
func (ps *players) worldDelta(p *player, d int) {
	sh := ps.shard(p.uuid)
	sh.mu.Lock()
	before := p.world
	p.world += d
	after := p.world
	sh.mu.Unlock()
	switch {
	case before == 0 && after > 0:
		ps.online.Add(1)
	case before > 0 && after == 0:
		ps.online.Add(-1)
	}
}

// conns returns uuid's connections (a copy), nil if it has none.
func (ps *players) connsOf(uuid string) []*client {
	sh := ps.shard(uuid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.m[uuid]
	if p == nil || len(p.conns) == 0 {
		return nil
	}
	return append([]*client(nil), p.conns...)
}

// all returns every connection (for shutdown).
func (ps *players) all() []*client {
	var out []*client
	for i := range ps.shards {
		sh := &ps.shards[i]
		sh.mu.Lock()
		for _, p := range sh.m {
			out = append(out, p.conns...)
		}
		sh.mu.Unlock()
	}
	return out
}
