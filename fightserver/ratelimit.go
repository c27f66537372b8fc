package fightserver

import (
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, at most burst. It is
// used by one goroutine (a connection's read loop) and has no lock.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes one token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter is one player's bucket, shared by all its connections (so
// reconnecting does not refill it).
type limiter struct {
	mu sync.Mutex
	b  bucket
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.allow(now)
}
