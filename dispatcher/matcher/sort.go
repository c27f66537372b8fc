package matcher

import "slices"

// radixMin is the number of additions from which sortPending uses a radix
// sort instead of a comparison sort.
const radixMin = 2048

// sortPending sorts the tickets added since the last tick by (rating,
// seq). They were appended in seq order, so a stable sort by rating is
// enough: a least-significant-digit radix sort on rating minus the lowest
// rating, one pass per 16 bits of the spread (one pass for ratings within
// 65,535 points, two at most since ratings are within ±MaxRating). O(K).
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
	var count [1 << 16]int
	for shift := uint(0); shift == 0 || span>>shift != 0; shift += 16 {
		clear(count[:])
		for _, e := range es {
			count[(uint64(e.rating-lo)>>shift)&0xffff]++
		}
		sum := 0
		for i, c := range count {
			count[i], sum = sum, sum+c
		}
		for _, e := range es {
			d := (uint64(e.rating-lo) >> shift) & 0xffff
			tmp[count[d]] = e
			count[d]++
		}
		es, tmp = tmp, es
	}
	// es holds the sorted result; keep both buffers for reuse.
	p.pending, p.spare = es, tmp[:0]
}
