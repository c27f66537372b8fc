package mapbench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free latency histogram in microseconds: exact below
// 1024 µs, then 512 sub-buckets per power of two (under 0.2% error).
type hist struct {
	counts [1024 + 40*512]atomic.Uint64
	n      atomic.Uint64
}

func bucket(us uint64) int {
	if us < 1024 {
		return int(us)
	}
	e := bits.Len64(us) - 10 // >= 1
	if e > 40 {
		e = 40
		us = 1023 << 40
	}
	return 1024 + (e-1)*512 + int(us>>uint(e)-512)
}

func bucketValue(i int) uint64 {
	if i < 1024 {
		return uint64(i)
	}
	e := (i-1024)/512 + 1
	m := uint64((i-1024)%512 + 512)
	return m << uint(e)
}

func (h *hist) add(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.counts[bucket(uint64(us))].Add(1)
	h.n.Add(1)
}

// quantile returns the q-quantile (0..1) in microseconds, 0 when empty.
func (h *hist) quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return float64(bucketValue(i))
		}
	}
	return 0
}

func (h *hist) count() uint64 { return h.n.Load() }
