package fleet

import (
	"container/heap"

	"github.com/arena-game/arena/hostctl"
)

// readyHeap holds the processes of one kind that can take work (ready, on
// a host that takes work), least first by less: placement reads its top
// instead of scanning the table, so a get after a load changed costs a
// heap fix (O(log n)) rather than a pass over every process of the kind.
//
// The fleet keeps it current under f.mu: whatever changes a process's
// load, pending slots, map count or state calls f.indexLocked(p), and
// whatever changes whether a host takes work calls f.indexHostLocked(h).
// MAXNUM is not part of it: the top is below MAXNUM or nothing is.
type readyHeap []*Proc

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return less(h[i], h[j]) }
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapPos, h[j].heapPos = i+1, j+1
}

func (h *readyHeap) Push(x any) {
	p := x.(*Proc)
	*h = append(*h, p)
	p.heapPos = len(*h)
}

func (h *readyHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.heapPos = 0
	return p
}

// eligibleLocked reports whether p belongs in its kind's heap. Callers
// hold f.mu.
func (f *Fleet) eligibleLocked(p *Proc) bool {
	return p.State == hostctl.Ready && f.availableLocked(p.h) && f.procs[p.Key()] == p
}

// indexLocked puts p where it belongs in its kind's heap after a change:
// in it at its place when it can take work, out of it otherwise. Callers
// hold f.mu.
func (f *Fleet) indexLocked(p *Proc) {
	h := f.ready[p.Kind]
	switch in := p.heapPos > 0; {
	case f.eligibleLocked(p) && in:
		heap.Fix(h, p.heapPos-1)
	case f.eligibleLocked(p):
		if h == nil {
			h = &readyHeap{}
			f.ready[p.Kind] = h
		}
		heap.Push(h, p)
	case in:
		heap.Remove(h, p.heapPos-1)
	}
}

// indexHostLocked re-indexes every process of host h after a change of
// whether it takes work (state, draining, session) or of its locality.
// Callers hold f.mu.
func (f *Fleet) indexHostLocked(h *host) {
	for _, p := range f.procs {
		if p.h == h {
			f.indexLocked(p)
		}
	}
}

// leastReadyLocked is the top of kind's heap when it is below MAXNUM:
// the least-loaded process that can take work (less breaks ties), or nil.
// Callers hold f.mu.
func (f *Fleet) leastReadyLocked(kind string) *Proc {
	h := f.ready[kind]
	if h == nil || len(*h) == 0 {
		return nil
	}
	if p := (*h)[0]; p.Load+p.Pending < f.maxnum {
		return p
	}
	return nil
}
