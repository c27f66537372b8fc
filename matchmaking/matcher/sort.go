package matcher

import "slices"

// radixMin is the number of additions from which sortPending uses a radix
// sort instead of a comparison sort.
const radixMin = 2048

// sortPending sorts the tickets added since the last tick by (rating,
// seq). They were appended in seq order, so a stable sort by rating is
// enough: a least-significant-digit radix sort on rating minus the lowest
// rating, one pass per digit of the spread (8-bit digits below 65,536
// additions, 16-bit above: two passes for ratings within 65,535 points).
// O(K).
func (p *Pool) sortPending() {
	es := p.pending
	if len(es) < radixMin {
		slices.SortFunc(es, cmpEntry)
		return
	}
	lo, hi := es[0].rating, es[0].rating
	for _, e := range es {
		lo, hi = min(lo, e.rating), max(hi, e.rating)
	}
	span := uint64(hi - lo)
	tmp := resize(p.spare[:0], len(es)) // spare is free until merge fills it
	bits := uint(8)
	if len(es) >= 1<<16 {
		bits = 16
	}
	mask := uint64(1)<<bits - 1
	p.count = resize(p.count, 1<<bits)
	count := p.count
	for shift := uint(0); shift == 0 || span>>shift != 0; shift += bits {
		clear(count)
		for _, e := range es {
			count[(uint64(e.rating-lo)>>shift)&mask]++
		}
		sum := 0
		for i, c := range count {
			count[i], sum = sum, sum+c
		}
		for _, e := range es {
			d := (uint64(e.rating-lo) >> shift) & mask
			tmp[count[d]] = e
			count[d]++
		}
		es, tmp = tmp, es
	}
	// es holds the sorted result; keep both buffers for reuse.
	p.pending, p.spare = es, tmp[:0]
}
