package mapbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/jsonnum"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsload"
	"github.com/arena-game/arena/mapserver"
)

// event is something a bot's connection told it.
type event struct {
	gen  int64
	typ  string // welcome, switch, error, closed
	data []byte
	// at is when the message was read off the socket: latencies end
	// there, not when the bot's goroutine gets to it (the load
	// generator's own scheduling is not the servers' latency).
	at time.Time
}

// moveRec is a bot's latest move, for move-to-seen matching.
type moveRec struct {
	x, y float64
	at   time.Time
}

// bot is one simulated player: a goroutine that walks and switches, and a
// connection whose read goroutine feeds it events.
type bot struct {
	b        *bench
	claims   auth.Claims
	observer bool
	rng      *rand.Rand
	events   chan event
	gen      atomic.Int64
	last     atomic.Pointer[moveRec]

	// Walk state, bot goroutine only.
	conn     botConn
	mapID    string
	x, y     float64
	tx, ty   float64
	toPortal *mapserver.Portal
	buf      []byte
}

// botConn is a bot's connection: a wsload or a wsconn client.
type botConn interface {
	Send(msg []byte) error
	close()
}

type wsconnConn struct{ *wsconn.Conn }

func (c wsconnConn) close() { c.Close(wsconn.CloseNormal, "") }

type wsloadConn struct{ *wsload.Conn }

func (c wsloadConn) close() { c.Close(wsconn.CloseNormal, "") }

// connHandler delivers one connection's messages to its bot, tagged with
// the connection's generation so a bot ignores its old connections. It
// serves wsconn connections; loadHandler adapts it to wsload's.
type connHandler struct {
	bt  *bot
	gen int64
}

func (h connHandler) OnOpen(*wsconn.Conn) {}

func (h connHandler) OnClose(_ *wsconn.Conn, err error) { h.closed(wsconn.CloseCode(err), err) }

func (h connHandler) OnMessage(_ *wsconn.Conn, data []byte) { h.message(data) }

// closed reports the connection's end: the close code the server sent,
// or why it ended without one.
func (h connHandler) closed(code int, err error) {
	why := "close code " + strconv.Itoa(code)
	if code == 0 && err != nil {
		why = shortErr(err)
	}
	h.push(event{gen: h.gen, typ: "closed", data: []byte(why)})
}

type loadHandler struct{ h connHandler }

func (l loadHandler) OnMessage(_ *wsload.Conn, data []byte) { l.h.message(data) }
func (l loadHandler) OnClose(_ *wsload.Conn, err error) {
	code := 0
	var ce *wsload.CloseError
	if errors.As(err, &ce) {
		code = ce.Code
	}
	l.h.closed(code, err)
}

func (h connHandler) push(e event) {
	select {
	case h.bt.events <- e:
	default:
		// The bot is not keeping up with its connection's events;
		// count it so a lost switch answer shows in the results.
		h.bt.b.countErr("event dropped: " + e.typ)
	}
}

var typePrefix = []byte(`{"type":"`)

func (h connHandler) message(data []byte) {
	b := h.bt.b
	if b.measuring.Load() {
		b.msgsIn.Add(1)
	}
	if !bytes.HasPrefix(data, typePrefix) {
		return
	}
	rest := data[len(typePrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return
	}
	switch typ := string(rest[:end]); typ {
	case "positions":
		if h.bt.observer && b.measuring.Load() {
			h.bt.observe(data)
		}
	case "enter", "leave", "pong":
	default:
		h.push(event{gen: h.gen, typ: typ, data: append([]byte(nil), data...), at: time.Now()})
	}
}

// observe matches the positions in a message against the movers' latest
// moves and records move-to-seen latencies. It scans the server's fixed
// layout ({"id":"…","x":X,"y":Y} entries) instead of decoding the JSON:
// the load generator shares the machine with the servers it measures.
func (bt *bot) observe(data []byte) {
	now := time.Now()
	for {
		i := bytes.Index(data, idKey)
		if i < 0 {
			return
		}
		data = data[i+len(idKey):]
		end := bytes.IndexByte(data, '"')
		if end < 0 {
			return
		}
		id := data[:end]
		data = data[end+1:]
		x, rest, ok := numberAfter(data, xKey)
		if !ok {
			return
		}
		y, rest, ok := numberAfter(rest, yKey)
		if !ok {
			return
		}
		data = rest
		mover := bt.b.bots[string(id)]
		if mover == nil {
			continue
		}
		if rec := mover.last.Load(); rec != nil && rec.x == x && rec.y == y {
			bt.b.seen.add(now.Sub(rec.at))
		}
	}
}

var (
	idKey = []byte(`"id":"`)
	xKey  = []byte(`,"x":`)
	yKey  = []byte(`,"y":`)
)

// numberAfter parses the JSON number that follows key at the start of b.
func numberAfter(b, key []byte) (float64, []byte, bool) {
	if !bytes.HasPrefix(b, key) {
		return 0, nil, false
	}
	b = b[len(key):]
	n := jsonnum.Len(b)
	if n == 0 {
		return 0, nil, false
	}
	v, err := jsonnum.Parse(b[:n])
	return v, b[n:], err == nil
}

// randomSpot returns a point of m at least 80 units from every portal.
func (bt *bot) randomSpot(m *mapserver.Map) (float64, float64) {
	for {
		x, y := 20+bt.rng.Float64()*(m.Width-40), 20+bt.rng.Float64()*(m.Height-40)
		ok := true
		for _, p := range m.Portals {
			if p.Rect.Dist(mapserver.Point{X: x, Y: y}) < 80 {
				ok = false
				break
			}
		}
		if ok {
			return x, y
		}
	}
}

// connect dials a map server with a ticket and waits for the welcome; it
// returns when the welcome arrived.
func (bt *bot) connect(ctx context.Context, addr, ticket string) (time.Time, error) {
	gen := bt.gen.Add(1)
	u := addr + "?ticket=" + url.QueryEscape(ticket)
	var c botConn
	if p := bt.b.pool; p != nil {
		lc, err := p.Dial(ctx, u, loadHandler{connHandler{bt, gen}})
		if err != nil {
			return time.Time{}, err
		}
		c = wsloadConn{lc}
	} else {
		wc, err := wsconn.Dial(ctx, u, connHandler{bt, gen}, wsconn.Options{IdleTimeout: 5 * time.Minute, ReadBuffer: 2048})
		if err != nil {
			return time.Time{}, err
		}
		c = wsconnConn{wc}
	}
	old := bt.conn
	bt.conn = c
	if old != nil {
		old.close()
	}
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case e := <-bt.events:
			if e.gen != gen {
				continue
			}
			switch e.typ {
			case "welcome":
				var w mapserver.Welcome
				if err := json.Unmarshal(e.data, &w); err != nil {
					return time.Time{}, err
				}
				bt.mapID, bt.x, bt.y = w.Map.ID, w.You.X, w.You.Y
				bt.toPortal = nil
				bt.tx, bt.ty = bt.x, bt.y
				return e.at, nil
			case "error":
				return time.Time{}, remoteErr(e.data)
			case "closed":
				return time.Time{}, errors.New("closed before the welcome")
			}
		}
	}
}

func remoteErr(data []byte) error {
	var e struct{ Code, Message string }
	_ = json.Unmarshal(data, &e)
	return &wsconn.RemoteError{Code: e.Code, Message: e.Message}
}

// enter places the bot with mapserver.Enter and connects.
func (bt *bot) enter(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ans, err := mapserver.Enter(ctx, bt.b.st, bt.b.signer, bt.b.world, bt.b.loc, bt.claims, "")
	if err != nil {
		return err
	}
	_, err = bt.connect(ctx, ans.Addr, ans.Ticket)
	return err
}

func (bt *bot) close() {
	if bt.conn != nil {
		bt.conn.close()
	}
}

// walk moves the bot until ctx ends: a random stroll, then to the
// nearest portal and through it with a switch, and again.
func (bt *bot) walk(ctx context.Context) {
	b := bt.b
	interval := time.Duration(float64(time.Second) / b.cfg.MoveRate)
	lastMove := time.Now().Add(-interval)
	// Random phase so the moves do not arrive in lockstep.
	next := time.Now().Add(time.Duration(bt.rng.Int64N(int64(interval))))
	bt.pickTarget(false) // players start at random spots: head for a portal first
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case e := <-bt.events:
			bt.handle(ctx, e, time.Time{})
			continue
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now.Add(interval)
		}
		m := b.world.Map(bt.mapID)
		if bt.toPortal != nil && bt.toPortal.Rect.Dist(mapserver.Point{X: bt.x, Y: bt.y}) <= b.reach-5 {
			bt.switchTo(ctx, bt.toPortal.To)
			continue
		}
		// Like a real client: move as far as the time since the last move
		// allows (90% of max-speed), at most one second's worth.
		now := time.Now()
		step := b.speed * 0.9 * math.Min(now.Sub(lastMove).Seconds(), 1)
		lastMove = now
		dx, dy := bt.tx-bt.x, bt.ty-bt.y
		d := math.Hypot(dx, dy)
		if d <= step {
			bt.x, bt.y = bt.tx, bt.ty
			if bt.toPortal == nil {
				bt.pickTarget(false)
			}
		} else {
			bt.x += dx / d * step
			bt.y += dy / d * step
		}
		bt.x = math.Min(math.Max(bt.x, 0), m.Width)
		bt.y = math.Min(math.Max(bt.y, 0), m.Height)
		bt.sendMove()
	}
}

// pickTarget alternates a walk to a random spot of the map (stroll; so
// players spread over the whole map instead of crowding around the portal
// they arrived by) and a walk to one of the two nearest portals.
func (bt *bot) pickTarget(stroll bool) {
	m := bt.b.world.Map(bt.mapID)
	if stroll || len(m.Portals) == 0 {
		bt.toPortal = nil
		bt.tx, bt.ty = bt.randomSpot(m)
		return
	}
	// One of the two nearest portals, so walkers spread over them.
	first, second := -1, -1
	for i := range m.Portals {
		d := m.Portals[i].Rect.Dist(mapserver.Point{X: bt.x, Y: bt.y})
		switch {
		case first < 0 || d < m.Portals[first].Rect.Dist(mapserver.Point{X: bt.x, Y: bt.y}):
			first, second = i, first
		case second < 0 || d < m.Portals[second].Rect.Dist(mapserver.Point{X: bt.x, Y: bt.y}):
			second = i
		}
	}
	pick := first
	if second >= 0 && bt.rng.IntN(2) == 0 {
		pick = second
	}
	bt.toPortal = &m.Portals[pick]
	r := bt.toPortal.Rect
	bt.tx, bt.ty = r.X+r.W/2, r.Y+r.H/2
}

func (bt *bot) sendMove() {
	b := bt.buf[:0]
	b = append(b, `{"type":"move","x":`...)
	b = strconv.AppendFloat(b, bt.x, 'f', -1, 64)
	b = append(b, `,"y":`...)
	b = strconv.AppendFloat(b, bt.y, 'f', -1, 64)
	b = append(b, '}')
	bt.buf = b
	bt.last.Store(&moveRec{x: bt.x, y: bt.y, at: time.Now()})
	if err := bt.conn.Send(append([]byte(nil), b...)); err == nil && bt.b.measuring.Load() {
		bt.b.moves.Add(1)
	}
}

// switchTo sends a switch and follows it to the next server.
func (bt *bot) switchTo(ctx context.Context, to string) {
	t0 := time.Now()
	if err := bt.conn.Send([]byte(`{"type":"switch","map":"` + to + `"}`)); err != nil {
		bt.fail(ctx, "send switch")
		return
	}
	gen := bt.gen.Load()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timeout:
			bt.fail(ctx, "switch timeout")
			return
		case e := <-bt.events:
			if e.gen != gen {
				continue
			}
			if e.typ == "error" {
				var er struct{ Code string }
				_ = json.Unmarshal(e.data, &er)
				if er.Code == mapserver.CodeSwitching || er.Code == mapserver.CodeTooFast {
					continue
				}
			}
			bt.handle(ctx, e, t0)
			return
		}
	}
}

// handle reacts to an event outside a move: a switch answer (ours, or
// one the server sent because we walked into a portal), an error, or a
// lost connection.
func (bt *bot) handle(ctx context.Context, e event, t0 time.Time) {
	if e.gen != bt.gen.Load() {
		return
	}
	switch e.typ {
	case "switch":
		var sw mapserver.SwitchAnswer
		if err := json.Unmarshal(e.data, &sw); err != nil {
			bt.fail(ctx, "bad switch")
			return
		}
		if t0.IsZero() {
			if rec := bt.last.Load(); rec != nil {
				t0 = rec.at
			}
		}
		answered := e.at
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		welcomed, err := bt.connect(cctx, sw.Addr, sw.Ticket)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				bt.b.handoffFail.Add(1)
				bt.b.countErr("handoff: " + shortErr(err))
				bt.rejoin(ctx)
			}
			return
		}
		if bt.b.measuring.Load() && !t0.IsZero() {
			bt.b.handoff.add(welcomed.Sub(t0))
			bt.b.swAnswer.add(answered.Sub(t0))
			bt.b.swJoin.add(welcomed.Sub(answered))
		}
		bt.pickTarget(true)
	case "error":
		var er struct {
			Code string
			X, Y *float64
		}
		_ = json.Unmarshal(e.data, &er)
		bt.b.countErr(er.Code)
		if er.X != nil && er.Y != nil {
			bt.x, bt.y = *er.X, *er.Y
		}
		if er.Code == mapserver.CodeNoPortal || er.Code == mapserver.CodeNotAtPortal || er.Code == mapserver.CodeUnavailable {
			bt.pickTarget(true)
		}
	case "closed":
		if ctx.Err() == nil {
			bt.b.countErr("disconnected: " + string(e.data))
			bt.rejoin(ctx)
		}
	}
}

// fail counts a failed handoff and puts the bot back on a map.
func (bt *bot) fail(ctx context.Context, why string) {
	if ctx.Err() != nil {
		return
	}
	bt.b.handoffFail.Add(1)
	bt.b.countErr("handoff: " + why)
	bt.rejoin(ctx)
}

// rejoin enters again through Enter after a lost connection.
func (bt *bot) rejoin(ctx context.Context) {
	for attempt := 0; attempt < 20 && ctx.Err() == nil; attempt++ {
		if err := bt.enter(ctx); err == nil {
			bt.pickTarget(true)
			return
		} else if attempt == 19 {
			bt.b.countErr(fmt.Sprint("rejoin: ", shortErr(err)))
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
