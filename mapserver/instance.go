package mapserver

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/mailbox"
)

// Messages to an instance's goroutine, through its inbox (moves through
// its moves mailbox).
type (
	joinMsg  struct{ s *session }
	leaveMsg struct{ s *session }
	moveMsg  struct {
		s  *session
		p  Point
		at time.Time
	}
	switchMsg struct {
		s  *session
		to string
	}
	switchDone struct {
		s  *session
		ok bool
	}
	drainMsg    struct{}
	shutdownMsg struct{ done chan struct{} }
)

// player is a player's state inside one instance; only the instance's
// goroutine touches it.
type player struct {
	s      *session
	idJSON []byte // "uuid", JSON-quoted
	frag   []byte // "id":"uuid","name":"name"
	x, y   float64
	budget float64
	refill time.Time

	idx       int // position in instance.all
	saveSlot  int // saved on the instance's save turns with this number
	cell      int
	cellPos   int
	moved     bool // moved during the current tick
	switching bool
	visible   []*player
	scratch   []*player
	mark      uint64
	// Encoded fragments, rebuilt at most once per tick.
	posJSON   []byte // {"id":..,"x":..,"y":..}
	posTick   uint64
	enterJSON []byte // {"id":..,"name":..,"x":..,"y":..}
	enterTick uint64
}

// instance is one hosted map: its players, their grid, and the goroutine
// that owns them (select on inbox, tick, save tick, server stop).
type instance struct {
	srv *Server
	m   *Map
	// inbox takes joins, leaves, switches, handoff results, drain and
	// shutdown (mailbox.Reject, inboxSize): a join or switch that finds it
	// full is refused with "busy". A message that ends what the instance
	// admitted is posted through a reservation and always gets in: a
	// session's leave (reserved at its join), a handoff's result
	// (reserved when the instance starts it), drain and shutdown (reserved
	// here). So the inbox holds at most inboxSize plus two per player plus
	// two messages.
	inbox                 *mailbox.Mailbox[any]
	drainReq, shutdownReq *mailbox.Reservation[any]
	// Moves wait in moves (mailbox.Reject, quiet, maxPendingMoves) until
	// the instance next wakes: at its next tick (where they are applied
	// before anyone is sent positions) or before its next inbox messages
	// (so a switch sees the moves sent before it). A move does not wake
	// the instance, which saves a goroutine wake-up, and often two thread
	// wake-ups, per move; a move into a portal does (Wake). A move that
	// finds maxPendingMoves waiting is refused with "busy".
	moves    *mailbox.Mailbox[moveMsg]
	movesBuf []moveMsg
	inboxBuf []any
	done     chan struct{} // closed when run returns
	count    atomic.Int32

	all  []*player
	byS  map[*session]*player
	cs   float64 // cell size
	cols int
	rows int
	grid [][]*player
	// cellTick[c] == tick when something moved into, out of or within
	// cell c during the current tick.
	cellTick []uint64
	tick     uint64
	epoch    uint64
	movers   []*player
	seq      uint64
	// Periodic saves are spread over saveSlots turns of one save interval
	// each, so memcached sees a steady stream rather than every player's
	// save at once. A player saves on the turns numbered its saveSlot.
	saveSlots int
	saveTurn  int
	nextSlot  int
	sortBuf   []cand
	sent      int // messages queued this tick
	// out collects this tick's messages; writes hands full batches to
	// the instance's writer goroutine, which returns them on free.
	out     *tickBatch
	writes  chan *tickBatch
	free    chan *tickBatch
	writing bool // writeTicks is running
}

// tickBatch is one tick's messages for an instance's players, laid end to
// end in buf. The instance's writer goroutine sends them (one SendNow, so
// one write, per player), so the instance goroutine goes back to its inbox
// as soon as the tick is computed instead of after thousands of writes.
type tickBatch struct {
	buf   []byte
	items []tickItem
}

// tickItem is one player's messages in a tickBatch: buf[start:ends[0]],
// buf[ends[0]:ends[1]], ... up to n.
type tickItem struct {
	conn  clientConn
	start int
	ends  [3]int
	n     int
}

// writeTicks sends the batches the instance hands over until writes is
// closed.
func (in *instance) writeTicks() {
	for b := range in.writes {
		var msgs [3][]byte
		for i := range b.items {
			it := &b.items[i]
			start := it.start
			for k := 0; k < it.n; k++ {
				msgs[k] = b.buf[start:it.ends[k]]
				start = it.ends[k]
			}
			_ = it.conn.SendNow(msgs[:it.n]...)
			it.conn = nil
		}
		b.buf, b.items = b.buf[:0], b.items[:0]
		select {
		case in.free <- b:
		default:
		}
	}
}

// flushTick hands this tick's batch to the writer goroutine (waiting when
// it is still two ticks behind: the instance slows down rather than queue
// without bound or reorder ticks).
func (in *instance) flushTick() {
	if len(in.out.items) == 0 {
		return
	}
	if !in.writing {
		in.writing = true
		go in.writeTicks()
	}
	in.writes <- in.out
	select {
	case in.out = <-in.free:
	default:
		in.out = &tickBatch{}
	}
}

type cand struct {
	p  *player
	d2 float64
}

// maxGridCells bounds the grid per axis; cells grow past the view radius
// on huge maps.
const maxGridCells = 512

func newInstance(s *Server, m *Map) *instance {
	cs := s.cfg.ViewRadius
	cs = math.Max(cs, m.Width/maxGridCells)
	cs = math.Max(cs, m.Height/maxGridCells)
	cols := int(math.Ceil(m.Width/cs)) + 1
	rows := int(math.Ceil(m.Height/cs)) + 1
	in := &instance{
		srv: s, m: m,
		inbox:     mailbox.New[any](inboxSize, mailbox.Reject),
		moves:     mailbox.New[moveMsg](maxPendingMoves, mailbox.Reject, mailbox.Quiet()),
		done:      make(chan struct{}),
		byS:       make(map[*session]*player),
		cs:        cs,
		cols:      cols,
		rows:      rows,
		grid:      make([][]*player, cols*rows),
		cellTick:  make([]uint64, cols*rows),
		tick:      1,
		saveSlots: saveSlots(s.cfg),
		out:       &tickBatch{},
		writes:    make(chan *tickBatch, 1),
		free:      make(chan *tickBatch, 2),
	}
	in.drainReq, in.shutdownReq = in.inbox.Reserve(), in.inbox.Reserve()
	return in
}

const (
	// inboxSize is how many joins and switches may wait for an instance.
	inboxSize = 4096
	// maxPendingMoves bounds the moves waiting for an instance's next
	// wake-up.
	maxPendingMoves = 8192
)

// postMove hands a move to the instance without waiting: it returns
// mailbox.ErrFull when maxPendingMoves are waiting (the move is dropped)
// and mailbox.ErrClosed once the instance has stopped. Every move joins
// the waiting moves, so a player's moves are applied in the order sent; a
// move into a portal starts a handoff, so it also wakes the instance to
// apply them at once.
func (in *instance) postMove(m moveMsg) error {
	if err := in.moves.Post(m); err != nil {
		return err
	}
	if in.m.PortalAt(m.p) != nil {
		in.moves.Wake()
	}
	return nil
}

// applyMoves applies the waiting moves, in the order they arrived.
func (in *instance) applyMoves() {
	in.movesBuf = in.moves.Take(in.movesBuf)
	for _, m := range in.movesBuf {
		in.move(m)
	}
}

func (in *instance) run() {
	defer close(in.done)
	defer func() {
		in.inbox.Close()
		in.moves.Close()
		if in.writing {
			close(in.writes)
		}
	}()
	tick := time.NewTicker(in.srv.cfg.Tick)
	defer tick.Stop()
	save := time.NewTicker(in.srv.cfg.SaveInterval / time.Duration(in.saveSlots))
	defer save.Stop()
	for {
		select {
		case <-in.srv.ctx.Done():
			return
		case <-in.inbox.Ready():
			in.applyMoves()
			in.inboxBuf = in.inbox.Take(in.inboxBuf)
			for _, msg := range in.inboxBuf {
				in.handle(msg)
			}
		case <-in.moves.Ready():
			in.applyMoves()
		case <-tick.C:
			start := time.Now()
			in.applyMoves()
			in.checkLeases()
			in.update()
			in.srv.met.tickSeconds.Observe(time.Since(start).Seconds())
		case <-save.C:
			in.applyMoves()
			in.saveTurnDue()
		}
	}
}

// handle applies one inbox message.
func (in *instance) handle(msg any) {
	switch m := msg.(type) {
	case joinMsg:
		in.join(m.s)
	case leaveMsg:
		if p := in.byS[m.s]; p != nil {
			in.remove(p)
			go in.srv.finalSave(m.s, p.x, p.y)
		}
	case switchMsg:
		in.switchTo(m)
	case switchDone:
		if p := in.byS[m.s]; p != nil {
			if m.ok {
				in.remove(p)
			} else {
				p.switching = false
			}
		}
	case drainMsg:
		in.drain()
	case shutdownMsg:
		in.shutdown()
		close(m.done)
	}
}

func (in *instance) cellOf(x, y float64) int {
	cx := int(x / in.cs)
	cy := int(y / in.cs)
	cx = min(max(cx, 0), in.cols-1)
	cy = min(max(cy, 0), in.rows-1)
	return cy*in.cols + cx
}

func (in *instance) gridAdd(p *player) {
	c := in.cellOf(p.x, p.y)
	p.cell, p.cellPos = c, len(in.grid[c])
	in.grid[c] = append(in.grid[c], p)
	in.cellTick[c] = in.tick
}

func (in *instance) gridRemove(p *player) {
	c := in.grid[p.cell]
	last := c[len(c)-1]
	c[p.cellPos] = last
	last.cellPos = p.cellPos
	c[len(c)-1] = nil
	in.grid[p.cell] = c[:len(c)-1]
	in.cellTick[p.cell] = in.tick
}

func (in *instance) join(s *session) {
	if in.byS[s] != nil {
		return
	}
	rec := s.rec
	pt := Point{rec.X, rec.Y}
	if !in.m.InBounds(pt) {
		pt = in.m.Spawn
	}
	name := s.claims.Name
	if rec.Name != "" {
		name = rec.Name
	}
	idJSON, _ := json.Marshal(s.claims.Subject)
	nameJSON, _ := json.Marshal(name)
	p := &player{
		s: s, idJSON: idJSON,
		frag: []byte(`"id":` + string(idJSON) + `,"name":` + string(nameJSON)),
		x:    pt.X, y: pt.Y,
		budget: in.srv.cfg.MaxSpeed * MoveBurst, refill: time.Now(),
		idx: len(in.all), saveSlot: in.nextSlot,
	}
	in.nextSlot = (in.nextSlot + 1) % in.saveSlots
	in.all = append(in.all, p)
	in.byS[s] = p
	in.gridAdd(p)
	in.count.Add(1)
	in.srv.met.players.WithLabelValues(in.m.ID).Inc()
	in.srv.notify.changed()
	w := Welcome{
		Type: "welcome",
		You: WelcomeYou{ID: s.claims.Subject, Name: name, X: p.x, Y: p.y, HP: rec.HP,
			Inventory: rec.Inventory, Version: rec.Version},
		Map: WelcomeMap{ID: in.m.ID, Name: in.m.Name, Width: in.m.Width, Height: in.m.Height,
			Portals: in.m.Portals},
		ViewRadius: in.srv.cfg.ViewRadius, MaxSpeed: in.srv.cfg.MaxSpeed,
		SwitchReach: in.srv.cfg.SwitchReach, TickMS: in.srv.cfg.Tick.Milliseconds(),
	}
	if w.Map.Portals == nil {
		w.Map.Portals = []Portal{}
	}
	// The welcome ends a handoff: it is written at once (SendNow) instead
	// of waking the connection's writer goroutine.
	welcome, _ := json.Marshal(w)
	_ = s.conn.SendNow(welcome)
	in.srv.met.messagesOut.Inc()
}

// remove takes p off the map and reports the load change.
func (in *instance) remove(p *player) {
	delete(in.byS, p.s)
	last := in.all[len(in.all)-1]
	in.all[p.idx] = last
	last.idx = p.idx
	in.all[len(in.all)-1] = nil
	in.all = in.all[:len(in.all)-1]
	in.gridRemove(p)
	p.visible = nil
	in.count.Add(-1)
	in.srv.met.players.WithLabelValues(in.m.ID).Dec()
	in.srv.notify.changed()
}

func (in *instance) reject(p *player, code, msg string) {
	x, y := p.x, p.y
	e := newError(code, msg)
	e.X, e.Y = &x, &y
	_ = p.s.conn.SendJSON(e)
}

func (in *instance) move(m moveMsg) {
	p := in.byS[m.s]
	if p == nil {
		return
	}
	if p.switching {
		p.s.sendError(CodeSwitching, "a switch is under way; move ignored")
		return
	}
	met := in.srv.met.moves
	if !in.m.InBounds(m.p) {
		met.WithLabelValues(CodeOutOfBounds).Inc()
		in.reject(p, CodeOutOfBounds, fmt.Sprintf("(%g,%g) is off the map (%gx%g); position kept", m.p.X, m.p.Y, in.m.Width, in.m.Height))
		return
	}
	speed := in.srv.cfg.MaxSpeed
	if dt := m.at.Sub(p.refill).Seconds(); dt > 0 {
		p.budget = math.Min(speed*MoveBurst, p.budget+dt*speed)
		p.refill = m.at
	}
	d := math.Hypot(m.p.X-p.x, m.p.Y-p.y)
	if d > p.budget+1e-9 {
		met.WithLabelValues(CodeTooFast).Inc()
		in.reject(p, CodeTooFast, fmt.Sprintf("moved %.1f units; at most %.1f allowed now (max speed %g/s); position kept", d, p.budget, speed))
		return
	}
	met.WithLabelValues("ok").Inc()
	p.budget -= d
	p.x, p.y = m.p.X, m.p.Y
	if c := in.cellOf(p.x, p.y); c != p.cell {
		in.gridRemove(p)
		in.gridAdd(p)
	} else {
		in.cellTick[c] = in.tick
	}
	if !p.moved {
		p.moved = true
		in.movers = append(in.movers, p)
	}
	if portal := in.m.PortalAt(m.p); portal != nil {
		in.startHandoff(p, portal.To, portal.Arrival, false)
	}
}

func (in *instance) switchTo(m switchMsg) {
	p := in.byS[m.s]
	if p == nil {
		return
	}
	if p.switching {
		p.s.sendError(CodeSwitching, "a switch is already under way")
		return
	}
	if in.srv.world.Map(m.to) == nil {
		p.s.sendError(CodeUnknownMap, fmt.Sprintf("no map %.64q in this world", m.to))
		return
	}
	portal, d := in.m.NearestPortalTo(m.to, Point{p.x, p.y})
	if portal == nil {
		p.s.sendError(CodeNoPortal, fmt.Sprintf("no portal from %s to %s", in.m.ID, m.to))
		return
	}
	if d > in.srv.cfg.SwitchReach {
		in.reject(p, CodeNotAtPortal, fmt.Sprintf("the portal to %s is %.0f units away; come within %g", m.to, d, in.srv.cfg.SwitchReach))
		return
	}
	in.startHandoff(p, portal.To, portal.Arrival, false)
}

// startHandoff starts moving p to map to; the handoff's result comes back
// through a reservation of the inbox (one per player switching).
func (in *instance) startHandoff(p *player, to string, arr Point, drain bool) {
	p.switching = true
	go in.srv.handoff(p.s, in.m.ID, to, arr, drain, in.inbox.Reserve())
}

func (in *instance) drain() {
	for _, p := range in.all {
		if !p.switching {
			in.startHandoff(p, in.m.ID, Point{p.x, p.y}, true)
		}
	}
}

// shutdown saves every player offline and disconnects them.
func (in *instance) shutdown() {
	var wg sync.WaitGroup
	for len(in.all) > 0 {
		p := in.all[len(in.all)-1]
		in.remove(p)
		wg.Add(1)
		go func(p *player) {
			defer wg.Done()
			in.srv.finalSave(p.s, p.x, p.y)
		}(p)
	}
	wg.Wait()
}

// maxSaveSlots bounds how finely the periodic saves are spread.
const maxSaveSlots = 64

// saveSlots is how many save turns one save interval is cut into: one per
// tick (at most maxSaveSlots), and one when the interval is shorter than a
// tick. Each player is still saved once per save interval.
func saveSlots(c Config) int {
	return int(max(1, min(maxSaveSlots, c.SaveInterval/c.Tick)))
}

// saveTurnDue queues a snapshot of the players whose turn it is (every
// player once per save interval) for saving, in batches.
func (in *instance) saveTurnDue() {
	in.seq++
	turn := in.saveTurn
	in.saveTurn = (in.saveTurn + 1) % in.saveSlots
	var batch []saveJob
	for _, p := range in.all {
		if p.switching || p.saveSlot != turn {
			continue
		}
		batch = append(batch, saveJob{s: p.s, x: p.x, y: p.y, seq: in.seq})
		if len(batch) == saveBatchSize {
			in.srv.submitSaves(batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		in.srv.submitSaves(batch)
	}
}

// leaseMargin is how long before its lease ends a player is dropped when
// its saves have not renewed the lease: two ticks, and at least a quarter
// of a save interval.
func (in *instance) leaseMargin() int64 {
	return max(2*in.srv.cfg.Tick.Milliseconds(), in.srv.cfg.SaveInterval.Milliseconds()/4)
}

// checkLeases drops, every tick, the players whose lease is about to run
// out because their saves fall behind, so a player is never played here
// once Enter may hand it to another server (it re-points only expired
// leases). The record is given back if it is still ours (compare-and-swap
// decides).
func (in *instance) checkLeases() {
	limit := time.Now().UnixMilli() + in.leaseMargin()
	for i := 0; i < len(in.all); i++ {
		p := in.all[i]
		if p.switching || p.s.leaseUntil.Load() > limit {
			continue
		}
		in.remove(p)
		i--
		in.srv.kick(p.s, CodeOwnershipLost, "could not renew your map lease; enter again")
		go in.srv.finalSave(p.s, p.x, p.y)
	}
}

// update sends every player whose surroundings changed this tick the
// players that came into view (enter), went out of view (leave) and moved
// (positions). Work per player is bounded by the players in its 3x3 grid
// cells, and what it is sent by MaxVisible.
func (in *instance) update() {
	r2 := in.srv.cfg.ViewRadius * in.srv.cfg.ViewRadius
	now := strconv.AppendInt(nil, time.Now().UnixMilli(), 10)
	for _, p := range in.all {
		if !in.touched(p) {
			continue
		}
		in.updateOne(p, r2, now)
	}
	in.flushTick()
	in.srv.met.messagesOut.Add(float64(in.sent))
	in.sent = 0
	for _, p := range in.movers {
		p.moved = false
	}
	clear(in.movers)
	in.movers = in.movers[:0]
	in.tick++
}

func (in *instance) touched(p *player) bool {
	cx, cy := p.cell%in.cols, p.cell/in.cols
	for y := max(cy-1, 0); y <= min(cy+1, in.rows-1); y++ {
		for x := max(cx-1, 0); x <= min(cx+1, in.cols-1); x++ {
			if in.cellTick[y*in.cols+x] == in.tick {
				return true
			}
		}
	}
	return false
}

func (in *instance) updateOne(p *player, r2 float64, now []byte) {
	next := p.scratch[:0]
	cx, cy := p.cell%in.cols, p.cell/in.cols
	for y := max(cy-1, 0); y <= min(cy+1, in.rows-1); y++ {
		for x := max(cx-1, 0); x <= min(cx+1, in.cols-1); x++ {
			for _, q := range in.grid[y*in.cols+x] {
				if q == p {
					continue
				}
				dx, dy := q.x-p.x, q.y-p.y
				if dx*dx+dy*dy <= r2 {
					next = append(next, q)
				}
			}
		}
	}
	if maxV := in.srv.cfg.MaxVisible; len(next) > maxV {
		cs := in.sortBuf[:0]
		for _, q := range next {
			dx, dy := q.x-p.x, q.y-p.y
			cs = append(cs, cand{q, dx*dx + dy*dy})
		}
		selectNearest(cs, maxV)
		next = next[:0]
		for _, c := range cs[:maxV] {
			next = append(next, c.p)
		}
		clear(cs)
		in.sortBuf = cs[:0]
	}
	in.epoch += 2
	was, kept := in.epoch, in.epoch+1
	for _, q := range p.visible {
		q.mark = was
	}
	var enter, moved []*player
	for _, q := range next {
		if q.mark == was {
			if q.moved {
				moved = append(moved, q)
			}
		} else {
			enter = append(enter, q)
		}
		q.mark = kept
	}
	// The tick's messages for p (leave, enter, positions) are built one
	// after the other in the tick's batch and sent together: one write.
	b := in.out.buf
	it := tickItem{conn: p.s.conn, start: len(b)}
	n := 0
	nLeave := 0
	for _, q := range p.visible {
		if q.mark == was {
			if nLeave == 0 {
				b = append(b, `{"type":"leave","ids":[`...)
			} else {
				b = append(b, ',')
			}
			b = append(b, q.idJSON...)
			nLeave++
		}
	}
	if nLeave > 0 {
		b = append(b, "]}"...)
		it.ends[n] = len(b)
		n++
	}
	if len(enter) > 0 {
		b = append(b, `{"type":"enter","players":[`...)
		for i, q := range enter {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, in.enterFrag(q)...)
		}
		b = append(b, "]}"...)
		it.ends[n] = len(b)
		n++
	}
	if len(moved) > 0 {
		b = append(b, `{"type":"positions","t":`...)
		b = append(b, now...)
		b = append(b, `,"players":[`...)
		for i, q := range moved {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, in.posFrag(q)...)
		}
		b = append(b, "]}"...)
		it.ends[n] = len(b)
		n++
	}
	if n > 0 {
		it.n = n
		in.out.items = append(in.out.items, it)
		in.sent += n
	}
	in.out.buf = b
	clear(p.visible)
	p.visible, p.scratch = next, p.visible[:0]
}

// posFrag returns q's {"id","x","y"} for this tick.
func (in *instance) posFrag(q *player) []byte {
	if q.posTick != in.tick || q.posJSON == nil {
		q.posJSON = appendPlayer(q.posJSON[:0], q, false)
		q.posTick = in.tick
	}
	return q.posJSON
}

// enterFrag returns q's {"id","name","x","y"} for this tick.
func (in *instance) enterFrag(q *player) []byte {
	if q.enterTick != in.tick || q.enterJSON == nil {
		q.enterJSON = appendPlayer(q.enterJSON[:0], q, true)
		q.enterTick = in.tick
	}
	return q.enterJSON
}

func appendPlayer(b []byte, q *player, full bool) []byte {
	b = append(b, '{')
	if full {
		b = append(b, q.frag...)
	} else {
		b = append(b, `"id":`...)
		b = append(b, q.idJSON...)
	}
	b = append(b, `,"x":`...)
	b = strconv.AppendFloat(b, q.x, 'f', -1, 64)
	b = append(b, `,"y":`...)
	b = strconv.AppendFloat(b, q.y, 'f', -1, 64)
	return append(b, '}')
}

// selectNearest reorders cs so its first k entries are the k smallest d2
// (in no particular order): quickselect, O(len(cs)) on average.
func selectNearest(cs []cand, k int) {
	lo, hi := 0, len(cs)-1
	for lo < hi {
		// Median of three as the pivot.
		mid := lo + (hi-lo)/2
		if cs[mid].d2 < cs[lo].d2 {
			cs[mid], cs[lo] = cs[lo], cs[mid]
		}
		if cs[hi].d2 < cs[lo].d2 {
			cs[hi], cs[lo] = cs[lo], cs[hi]
		}
		if cs[hi].d2 < cs[mid].d2 {
			cs[hi], cs[mid] = cs[mid], cs[hi]
		}
		pivot := cs[mid].d2
		i, j := lo, hi
		for i <= j {
			for cs[i].d2 < pivot {
				i++
			}
			for cs[j].d2 > pivot {
				j--
			}
			if i <= j {
				cs[i], cs[j] = cs[j], cs[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
