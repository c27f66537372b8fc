package matchfn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchfnpb"
)

// The wire protocol (protocol 3, proto/matchfn.proto): the plugin keeps a
// table of candidates per session, one session per profile the
// dispatcher matches with that plugin process. Each candidate holds a
// slot; pools list their candidates by slot, and a request carries in
// full only the candidates new to the table or changed since the
// session's last answered request, and the slots emptied since. A tick
// over 10,000 candidates of which a tenth are new sends a thousand
// candidates and 10,000 slot numbers instead of 10,000 candidates.

// ErrStaleSession: a request changes a table the plugin does not have
// (it restarted, or evicted the session, or the request does not follow
// the table's last one). The dispatcher then sends the table from empty.
var ErrStaleSession = errors.New("match function session unknown or stale")

// unknownTicket marks a response's ticket that is not a slot: the values
// from it on name MatchResponse.unknown_ids.
const unknownTicket = 1 << 31

// session is the dispatcher's side of one session: what the plugin's
// table holds, by slot, as of the session's last request (the session
// is dropped when a call fails, so the two never disagree).
type session struct {
	id    uint64
	gen   uint64 // the last generation the plugin answered (0: none, the table is empty)
	slots []sentSlot
	free  []uint32
	// ids are the used slots by ticket id; a first request (every
	// candidate new) builds them in a goroutine that runs while the
	// plugin works.
	ids slotIndex
}

// slotIndex is a table's used slots by ticket id. A first request, whose
// candidates are all new, needs none on its path: build then makes it
// in a goroutine (beside the RPC, or beside the function), and wait
// joins that goroutine before the index is read or changed again.
type slotIndex struct {
	m     map[string]uint32
	ready chan struct{} // non-nil while a goroutine builds m
}

// build indexes n slots (id gives a slot's ticket id, false for an empty
// slot), in a goroutine when async.
func (x *slotIndex) build(n int, id func(slot int) (string, bool), async bool) {
	fill := func() {
		m := make(map[string]uint32, n)
		for slot := range n {
			if k, ok := id(slot); ok {
				m[k] = uint32(slot)
			}
		}
		x.m = m
	}
	if !async {
		fill()
		return
	}
	done := make(chan struct{})
	x.ready = done
	go func() {
		fill()
		close(done)
	}()
}

// wait waits for a build in a goroutine, if one runs.
func (x *slotIndex) wait() {
	if x.ready != nil {
		<-x.ready
		x.ready = nil
	}
}

// drop forgets id when it names slot (after a pool that named a ticket
// twice, the id names only its last slot).
func (x *slotIndex) drop(id string, slot uint32) {
	if s, ok := x.m[id]; ok && s == slot {
		delete(x.m, id)
	}
}

// sentSlot is a slot of the plugin's table: what the plugin holds of a
// candidate, enough to tell whether it changed (seen 0: the slot is
// empty).
type sentSlot struct {
	id      string
	search  *matchmaking.SearchFields
	created int64
	rating  int64
	seen    uint64 // the generation that last named it
	members int32
}

func newSession() *session {
	return &session{id: rand.Uint64() | 1, ids: slotIndex{m: map[string]uint32{}}}
}

// same reports whether the plugin's copy of a candidate is c (search
// fields compared by pointer: the matchmaker gives equal fields one set,
// and a new pointer merely sends the candidate again).
func (sl *sentSlot) same(c *matchmaking.Candidate) bool {
	return sl.id == c.ID && sl.rating == int64(c.Rating) && sl.members == int32(c.Members) &&
		sl.created == c.Created.UnixNano() && sl.search == c.Search
}

// slotID is the ticket id in slot, false for an empty slot.
func (s *session) slotID(slot int) (string, bool) {
	sl := &s.slots[slot]
	return sl.id, sl.seen != 0
}

// encode is req as the session's next request. It changes the session as
// if the plugin applied it: when the call fails, the session must be
// dropped (a new one starts from an empty table).
//
// In a session's first request every candidate is new and the first pool
// names each once (a pool lists a ticket once), so its candidates take
// slots in order without looking them up; the index by id is built by a
// goroutine while the request travels and the plugin works (or at once,
// before a second pool that may name them again).
func (s *session) encode(req *matchmaking.MatchRequest) *matchfnpb.MatchRequest {
	s.ids.wait()
	gen := s.gen + 1
	out := &matchfnpb.MatchRequest{NowUnixNano: req.Now.UnixNano(), Profile: encodeProfile(req.Profile),
		Session: s.id, Generation: gen, Base: s.gen, Added: &matchfnpb.Candidates{}}
	add := out.Added
	first := s.gen == 0
	total, idBytes := 0, 0
	for _, pool := range req.Pools {
		total += len(pool)
		if first {
			for i := range pool {
				idBytes += len(pool[i].ID)
			}
		}
	}
	if first {
		// Every candidate is new: room for all of them at once.
		s.ids.m, s.slots, s.free = nil, make([]sentSlot, 0, total), nil
		add.Slots, add.IdEnds, add.SearchFields = make([]uint32, 0, total), make([]uint32, 0, total), make([]uint32, 0, total)
		add.Ratings, add.CreatedUnixNano, add.Members = make([]int64, 0, total), make([]int64, 0, total), make([]int32, 0, total)
	}
	ids := make([]byte, 0, idBytes)
	sets := searchSets{index: map[*matchmaking.SearchFields]uint32{}}
	for i, pool := range req.Pools {
		pb := &matchfnpb.Pool{Slots: make([]uint32, len(pool))}
		if i < len(req.Profile.Pools) {
			pb.Name = req.Profile.Pools[i].Name
		}
		unindexed := first && i == 0
		if first && i == 1 {
			s.ids.build(len(s.slots), s.slotID, false)
		}
		for j := range pool {
			c := &pool[j]
			var slot uint32
			ok := false
			if !unindexed {
				slot, ok = s.ids.m[c.ID]
			}
			switch {
			case ok && s.slots[slot].seen == gen: // named by an earlier pool
			case ok && s.slots[slot].same(c):
				s.slots[slot].seen = gen
			default:
				if !ok {
					slot = s.alloc()
					if !unindexed {
						s.ids.m[c.ID] = slot
					}
				}
				created := c.Created.UnixNano()
				s.slots[slot] = sentSlot{id: c.ID, search: c.Search, created: created, rating: int64(c.Rating), members: int32(c.Members), seen: gen}
				ids = append(ids, c.ID...)
				add.Slots = append(add.Slots, slot)
				add.IdEnds = append(add.IdEnds, uint32(len(ids)))
				add.Ratings = append(add.Ratings, int64(c.Rating))
				add.Members = append(add.Members, int32(c.Members))
				add.CreatedUnixNano = append(add.CreatedUnixNano, created)
				add.SearchFields = append(add.SearchFields, sets.number(c.Search))
			}
			pb.Slots[j] = slot
		}
		out.Pools = append(out.Pools, pb)
	}
	add.Ids = ids
	if !first {
		for slot := range s.slots {
			if sl := &s.slots[slot]; sl.seen != 0 && sl.seen != gen {
				out.Removed = append(out.Removed, uint32(slot))
				s.ids.drop(sl.id, uint32(slot))
				*sl = sentSlot{}
				s.free = append(s.free, uint32(slot))
			}
		}
	}
	out.SearchFields = sets.encode()
	s.gen = gen
	if s.ids.m == nil {
		s.ids.build(len(s.slots), s.slotID, true)
	}
	return out
}

// alloc is a free slot.
func (s *session) alloc() uint32 {
	if n := len(s.free); n > 0 {
		slot := s.free[n-1]
		s.free = s.free[:n-1]
		return slot
	}
	s.slots = append(s.slots, sentSlot{})
	return uint32(len(s.slots) - 1)
}

// decode is the plugin's answer to the session's last request; the
// matchmaker validates the proposals against the request. An answer
// whose columns do not add up, or names an empty slot, is an error.
func (s *session) decode(r *matchfnpb.MatchResponse) ([]matchmaking.Proposal, error) {
	scores, counts, sizes, tickets := r.GetScores(), r.GetRosters(), r.GetRosterSizes(), r.GetTickets()
	if len(counts) != len(scores) {
		return nil, fmt.Errorf("decode match response: %d scores, %d roster counts", len(scores), len(counts))
	}
	nr, nt := 0, 0
	for _, c := range counts {
		nr += int(c)
	}
	if nr != len(sizes) {
		return nil, fmt.Errorf("decode match response: %d rosters counted, %d sized", nr, len(sizes))
	}
	for _, c := range sizes {
		nt += int(c)
	}
	if nt != len(tickets) {
		return nil, fmt.Errorf("decode match response: %d tickets counted, %d given", nt, len(tickets))
	}
	ids := make([]string, len(tickets))
	for j, k := range tickets {
		switch {
		case k >= unknownTicket && int(k-unknownTicket) < len(r.GetUnknownIds()):
			ids[j] = r.UnknownIds[k-unknownTicket]
		case k < unknownTicket && int(k) < len(s.slots) && s.slots[k].seen != 0:
			ids[j] = s.slots[k].id
		default:
			return nil, fmt.Errorf("decode match response: ticket %d is no slot of %d nor one of %d unknown ids", k, len(s.slots), len(r.GetUnknownIds()))
		}
	}
	out := make([]matchmaking.Proposal, len(scores))
	rosters := make([][]string, len(sizes))
	ri, ti := 0, 0
	for j := range out {
		out[j].Score = scores[j]
		out[j].Rosters = rosters[ri : ri+int(counts[j]) : ri+int(counts[j])]
		for k := range out[j].Rosters {
			n := int(sizes[ri])
			out[j].Rosters[k] = ids[ti : ti+n : ti+n]
			ri, ti = ri+1, ti+n
		}
	}
	return out, nil
}

func encodeProfile(p *matchmaking.Profile) *matchfnpb.Profile {
	out := &matchfnpb.Profile{Name: p.Name, MinPlayers: int32(p.MinPlayers), MaxPlayers: int32(p.MaxPlayers), PluginParams: p.Params.Plugin}
	if p.Params.WindowBase != nil {
		out.WindowBase = *p.Params.WindowBase
	}
	if p.Params.WindowPerSecond != nil {
		out.WindowPerSecond = *p.Params.WindowPerSecond
	}
	for _, r := range p.Rosters {
		out.Rosters = append(out.Rosters, &matchfnpb.Roster{Name: r.Name, Size: int32(r.Size)})
	}
	return out
}

// searchSets numbers the distinct search field sets of a request (by
// pointer).
type searchSets struct {
	index map[*matchmaking.SearchFields]uint32
	list  []*matchmaking.SearchFields
}

// number is 1 + f's index (0 for no fields).
func (ss *searchSets) number(f *matchmaking.SearchFields) uint32 {
	if f == nil || len(f.Doubles)+len(f.Strings)+len(f.Tags) == 0 {
		return 0
	}
	k, ok := ss.index[f]
	if !ok {
		ss.list = append(ss.list, f)
		k = uint32(len(ss.list))
		ss.index[f] = k
	}
	return k
}

// encode puts the sets in columns.
func (ss *searchSets) encode() *matchfnpb.SearchFieldSets {
	out := &matchfnpb.SearchFieldSets{Count: uint32(len(ss.list))}
	doubles, strs, tags := map[string]*matchfnpb.DoubleColumn{}, map[string]*matchfnpb.StringColumn{}, map[string]*matchfnpb.TagColumn{}
	for i, f := range ss.list {
		row := uint32(i)
		for k, v := range f.Doubles {
			col := columnOf(doubles, &out.Doubles, &matchfnpb.DoubleColumn{Name: k})
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for k, v := range f.Strings {
			col := columnOf(strs, &out.Strings, &matchfnpb.StringColumn{Name: k})
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for _, k := range f.Tags {
			col := columnOf(tags, &out.Tags, &matchfnpb.TagColumn{Name: k})
			col.Rows = append(col.Rows, row)
		}
	}
	return out
}

// columnOf is the column named as fresh is in byName; fresh itself,
// listed, when there is none yet.
func columnOf[C interface{ GetName() string }](byName map[string]C, list *[]C, fresh C) C {
	if col, ok := byName[fresh.GetName()]; ok {
		return col
	}
	byName[fresh.GetName()] = fresh
	*list = append(*list, fresh)
	return fresh
}

// maxSessions bounds the tables a plugin keeps: one per profile naming
// the function in each dispatcher calling it, so a handful; past it the
// least recently used is dropped (its next request gets ErrStaleSession).
const maxSessions = 64

// tables is the plugin's side: its sessions' tables.
type tables struct {
	mu   sync.Mutex
	m    map[uint64]*table
	used uint64 // a clock for least recently used
}

// table is one session's candidates by slot, as of its generation.
type table struct {
	gen   uint64
	cands []matchmaking.Candidate
	used  []bool
	last  uint64
	pools [][]matchmaking.Candidate // the last request's pools
	// ids are the used slots by ticket id; a first request (all its
	// candidates new) builds them in a goroutine beside the function.
	ids slotIndex
}

// slotID is the ticket id in slot, false for an empty slot.
func (t *table) slotID(slot int) (string, bool) { return t.cands[slot].ID, t.used[slot] }

// decode applies r to its session's table and is the request it makes.
// A request that does not follow its table gets ErrStaleSession; one
// that does not add up is an error, and its session is dropped.
func (ts *tables) decode(r *matchfnpb.MatchRequest) (*matchmaking.MatchRequest, *table, error) {
	pp := r.GetProfile()
	if pp == nil {
		return nil, nil, errors.New("decode match request: no profile")
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = map[uint64]*table{}
	}
	t := ts.m[r.GetSession()]
	switch {
	case r.GetBase() == 0:
		t = &table{}
	case t == nil || t.gen != r.GetBase():
		return nil, nil, fmt.Errorf("decode match request: session %x at %d, request on %d: %w", r.GetSession(), tableGen(t), r.GetBase(), ErrStaleSession)
	}
	delete(ts.m, r.GetSession()) // until it decodes
	t.ids.wait()
	req, err := t.apply(r)
	if err != nil {
		return nil, nil, err
	}
	if len(ts.m) >= maxSessions {
		var old uint64
		for id, o := range ts.m {
			if ts.m[old] == nil || o.last < ts.m[old].last {
				old = id
			}
		}
		delete(ts.m, old)
	}
	ts.used++
	t.gen, t.last = r.GetGeneration(), ts.used
	ts.m[r.GetSession()] = t
	return req, t, nil
}

func tableGen(t *table) uint64 {
	if t == nil {
		return 0
	}
	return t.gen
}

// noFields is the search fields of decoded candidates that have none.
var noFields = &matchmaking.SearchFields{}

// apply makes r's changes to t and builds its request. Candidates with
// equal search fields share one SearchFields; candidates without any
// share an empty one; the added ids are slices of one string.
func (t *table) apply(r *matchfnpb.MatchRequest) (*matchmaking.MatchRequest, error) {
	pp := r.GetProfile()
	base, per := pp.GetWindowBase(), pp.GetWindowPerSecond()
	p := &matchmaking.Profile{Name: pp.GetName(), MinPlayers: int(pp.GetMinPlayers()), MaxPlayers: int(pp.GetMaxPlayers()),
		Params: matchmaking.Params{WindowBase: &base, WindowPerSecond: &per, Plugin: json.RawMessage(pp.GetPluginParams())}}
	for _, r := range pp.GetRosters() {
		p.Rosters = append(p.Rosters, matchmaking.Roster{Name: r.GetName(), Size: int(r.GetSize())})
	}
	for _, slot := range r.GetRemoved() {
		if int(slot) >= len(t.cands) || !t.used[slot] {
			return nil, fmt.Errorf("decode match request: removed slot %d is empty", slot)
		}
		t.ids.drop(t.cands[slot].ID, slot)
		t.cands[slot], t.used[slot] = matchmaking.Candidate{}, false
	}
	add := r.GetAdded()
	n := len(add.GetSlots())
	// A first request fills an empty table: nothing to look up or
	// replace, and the index is built beside the function.
	first := len(t.cands) == 0
	if !first && t.ids.m == nil {
		t.ids.m = map[string]uint32{}
	}
	t.cands, t.used = slices.Grow(t.cands, n), slices.Grow(t.used, n)
	if len(add.GetIdEnds()) != n || len(add.GetRatings()) != n || len(add.GetMembers()) != n || len(add.GetCreatedUnixNano()) != n || len(add.GetSearchFields()) != n {
		return nil, errors.New("decode match request: added candidates' columns of different lengths")
	}
	sets, err := decodeSets(r.GetSearchFields(), n)
	if err != nil {
		return nil, err
	}
	ids := string(add.GetIds())
	from := uint32(0)
	for i, slot := range add.GetSlots() {
		end, k := add.IdEnds[i], add.SearchFields[i]
		if end < from || int(end) > len(ids) {
			return nil, fmt.Errorf("decode match request: candidate %d's id ends at %d, past %d..%d", i, end, from, len(ids))
		}
		if int(k) > len(sets) {
			return nil, fmt.Errorf("decode match request: candidate %d's search fields %d of %d", i, k, len(sets))
		}
		if int(slot) > len(t.cands)+n {
			return nil, fmt.Errorf("decode match request: slot %d past a table of %d and %d added", slot, len(t.cands), n)
		}
		for int(slot) >= len(t.cands) {
			t.cands, t.used = append(t.cands, matchmaking.Candidate{}), append(t.used, false)
		}
		search := noFields
		if k > 0 {
			search = &sets[k-1]
		}
		c := matchmaking.Candidate{ID: ids[from:end], Rating: int(add.Ratings[i]), Members: int(add.Members[i]),
			Created: time.Unix(0, add.CreatedUnixNano[i]), Search: search}
		if !first {
			if t.used[slot] {
				t.ids.drop(t.cands[slot].ID, slot)
			}
			t.ids.m[c.ID] = slot
		}
		t.cands[slot], t.used[slot] = c, true
		from = end
	}
	if first {
		t.ids.build(len(t.cands), t.slotID, true)
	}
	req := &matchmaking.MatchRequest{Profile: p, Now: time.Unix(0, r.GetNowUnixNano())}
	for k := len(r.GetPools()); len(t.pools) < k; {
		t.pools = append(t.pools, nil)
	}
	for pi, pool := range r.GetPools() {
		p.Pools = append(p.Pools, matchmaking.Pool{Name: pool.GetName()})
		// The pools' slices are the table's from call to call (a function
		// must not keep them past its call).
		cands := slices.Grow(t.pools[pi][:0], len(pool.GetSlots()))[:len(pool.GetSlots())]
		t.pools[pi] = cands
		for i, slot := range pool.GetSlots() {
			if int(slot) >= len(t.cands) || !t.used[slot] {
				return nil, fmt.Errorf("decode match request: pool %q names empty slot %d", pool.GetName(), slot)
			}
			cands[i] = t.cands[slot]
		}
		req.Pools = append(req.Pools, cands)
	}
	return req, nil
}

// decodeSets rebuilds the search field sets from their columns (no more
// than the candidates').
func decodeSets(ss *matchfnpb.SearchFieldSets, candidates int) ([]matchmaking.SearchFields, error) {
	if int64(ss.GetCount()) > int64(candidates) {
		return nil, fmt.Errorf("decode match request: %d search field sets for %d candidates", ss.GetCount(), candidates)
	}
	fields := make([]matchmaking.SearchFields, ss.GetCount())
	for _, col := range ss.GetDoubles() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), col.GetValues(), func(f *matchmaking.SearchFields, v float64) {
			if f.Doubles == nil {
				f.Doubles = map[string]float64{}
			}
			f.Doubles[name] = v
		}); err != nil {
			return nil, err
		}
	}
	for _, col := range ss.GetStrings() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), col.GetValues(), func(f *matchmaking.SearchFields, v string) {
			if f.Strings == nil {
				f.Strings = map[string]string{}
			}
			f.Strings[name] = v
		}); err != nil {
			return nil, err
		}
	}
	for _, col := range ss.GetTags() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), make([]struct{}, len(col.GetRows())), func(f *matchmaking.SearchFields, _ struct{}) {
			f.Tags = append(f.Tags, name)
		}); err != nil {
			return nil, err
		}
	}
	return fields, nil
}

// decodeColumn sets one search field column's values on the sets that
// have it.
func decodeColumn[V any](fields []matchmaking.SearchFields, rows []uint32, values []V, set func(*matchmaking.SearchFields, V)) error {
	if len(rows) != len(values) {
		return errors.New("decode match request: a column's rows and values differ in length")
	}
	for j, r := range rows {
		if int(r) >= len(fields) {
			return fmt.Errorf("decode match request: search field row %d of %d sets", r, len(fields))
		}
		set(&fields[r], values[j])
	}
	return nil
}

// encodeResponse is props, the answer to t's last request, on the wire:
// tickets by their slot in t.
func (t *table) encodeResponse(props []matchmaking.Proposal) *matchfnpb.MatchResponse {
	t.ids.wait()
	nr, nt := 0, 0
	for _, pr := range props {
		nr += len(pr.Rosters)
		for _, ids := range pr.Rosters {
			nt += len(ids)
		}
	}
	out := &matchfnpb.MatchResponse{Scores: make([]float64, len(props)), Rosters: make([]uint32, len(props)),
		RosterSizes: make([]uint32, 0, nr), Tickets: make([]uint32, 0, nt)}
	for j, pr := range props {
		out.Scores[j], out.Rosters[j] = pr.Score, uint32(len(pr.Rosters))
		for _, ids := range pr.Rosters {
			out.RosterSizes = append(out.RosterSizes, uint32(len(ids)))
			for _, id := range ids {
				k, ok := t.ids.m[id]
				if !ok {
					k = unknownTicket + uint32(len(out.UnknownIds))
					out.UnknownIds = append(out.UnknownIds, id)
				}
				out.Tickets = append(out.Tickets, k)
			}
		}
	}
	return out
}
