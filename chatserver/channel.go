package chatserver

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/wsconn"
	"golang.org/x/time/rate"
)

// Channel ownership (see docs/chat.md, "Inside"): a channel's membership is
// split over one or more shards; each shard is owned by one goroutine that
// selects on its two mailboxes (internal/mailbox) and is the only code
// that touches its member list. world and announce have Config.Shards
// shards, a room channel has one. Publishing encodes a message once, appends
// it to the channel's history snapshot and queues the same bytes to every
// shard; each shard queues them to its members with wsconn.Conn.Send, which
// never blocks (a member whose outbound queue is full is disconnected).
//
// Nothing waits for a shard. Its mailboxes and their policies when full:
//   - ctl (joins, leaves, stop; mailbox.Reject): a join that finds it full
//     is refused with channel_busy. A member's leave is posted through a
//     reservation taken with its join, and a room channel's stop through
//     one taken when the shard was made, so neither is ever refused: ctl
//     holds at most its capacity plus one per member plus one.
//   - pub (messages to fan out; mailbox.DropOldest): a shard that falls a
//     whole queue behind drops its oldest undelivered messages (counted in
//     arena_chat_dropped_total): its members miss them live, and they stay
//     in the channel's history.
// A shard handles ctl before pub in each turn; every publish carries its
// sequence number and a member only gets messages after the history it
// was sent, so a member sees each message once, live or in its history.

type opKind uint8

const (
	opJoin opKind = iota + 1
	opLeave
	opPublish
	opStop
)

type shardOp struct {
	kind  opKind
	c     *client
	ref   string
	reply bool   // leave: send "left"
	seq   uint64 // publish: the message's sequence number in this channel
	frame []byte
	// always delivers to every member, even one that joined after seq
	// (online counts, which are not history).
	always bool
}

// snapshot is a channel's history at one sequence number. It is immutable
// once published; its frames are encoded on first use.
type snapshot struct {
	seq     uint64
	entries []entry
	once    sync.Once
	frames  [][]byte
}

func (s *snapshot) historyFrames(channel string, maxFrame int) [][]byte {
	s.once.Do(func() {
		raws := make([]json.RawMessage, len(s.entries))
		for i, e := range s.entries {
			raws[i] = e.raw
		}
		s.frames = historyFrames(channel, raws, maxFrame)
	})
	return s.frames
}

// channel is one chat channel in this process.
type channel struct {
	name     string
	kind     ChannelKind
	srv      *Server
	shards   []*shard
	ready    chan struct{} // closed once history is loaded
	done     chan struct{} // closed when the channel stops
	stopOnce sync.Once
	snap     atomic.Pointer[snapshot]

	// mu serialises publishers so every shard sees messages in one order.
	mu  sync.Mutex
	seq uint64

	refs int // guarded by hub.mu: members plus one for permanent channels

	limiter *rate.Limiter // world only: the channel's own message rate
}

type member struct {
	c     *client
	since uint64 // the history snapshot it was sent; later messages are delivered
}

type shard struct {
	ch      *channel
	ctl     *mailbox.Mailbox[shardOp]
	pub     *mailbox.Mailbox[shardOp]
	stopReq *mailbox.Reservation[shardOp]
	members []member
	index   map[*client]int
}

func (s *Server) newChannel(name string, kind ChannelKind) *channel {
	n, inbox := 1, roomInbox
	if kind != KindRoom {
		n, inbox = s.cfg.Shards, sharedInbox
	}
	ch := &channel{name: name, kind: kind, srv: s, ready: make(chan struct{}), done: make(chan struct{})}
	if kind == KindWorld && s.cfg.WorldRate > 0 {
		ch.limiter = rate.NewLimiter(rate.Limit(s.cfg.WorldRate), s.cfg.WorldBurst)
	}
	ch.snap.Store(&snapshot{})
	for i := 0; i < n; i++ {
		sh := &shard{ch: ch, index: make(map[*client]int),
			ctl: mailbox.New[shardOp](inbox, mailbox.Reject),
			pub: mailbox.New[shardOp](inbox, mailbox.DropOldest)}
		sh.stopReq = sh.ctl.Reserve()
		ch.shards = append(ch.shards, sh)
		go sh.run()
	}
	go ch.load()
	s.m.channels.Inc()
	return ch
}

// load reads the channel's history. A store failure is logged and the
// channel starts with what it has: chat keeps working without memcached,
// and the next history write merges with whatever is stored.
func (ch *channel) load() {
	defer close(ch.ready)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, err := ch.srv.hist.Load(ctx, ch.name)
	if err != nil {
		ch.srv.log.Warn("chat history not loaded", "channel", ch.name, "err", err)
		return
	}
	ch.snap.Store(&snapshot{entries: entries})
}

// stop ends the channel's shard goroutines; ops still queued are dropped
// (nobody is left to receive them). Stopping twice is a no-op.
func (ch *channel) stop() {
	ch.stopOnce.Do(func() {
		close(ch.done)
		ch.srv.m.channels.Dec()
	})
}

// waitReady waits until the history is loaded (bounded by ctx).
func (ch *channel) waitReady(ctx context.Context) error {
	select {
	case <-ch.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ch *channel) shardFor(c *client) *shard {
	return ch.shards[c.id%uint64(len(ch.shards))]
}

// Shard queue sizes: a room channel's shard, and each shard of world and
// announce.
const (
	roomInbox   = 64
	sharedInbox = 4096
)

// publishTo queues a message to sh without waiting (dropping sh's oldest
// queued message when it is a whole queue behind).
func (sh *shard) publishTo(op shardOp) {
	n := sh.pub.Dropped()
	if sh.pub.Post(op) == nil && sh.pub.Dropped() != n {
		sh.ch.srv.m.dropped.Inc()
	}
}

// publish appends e to the channel's history and fans frame out to every
// member. Members that join concurrently get it either in their history or
// live, never both and never neither.
func (ch *channel) publish(e entry, frame []byte) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.seq++
	old := ch.snap.Load()
	size := ch.srv.cfg.HistorySize
	entries := make([]entry, 0, min(len(old.entries)+1, size))
	if skip := len(old.entries) + 1 - size; skip > 0 {
		entries = append(entries, old.entries[skip:]...)
	} else {
		entries = append(entries, old.entries...)
	}
	entries = append(entries, e)
	ch.snap.Store(&snapshot{seq: ch.seq, entries: entries})
	ch.srv.hist.Append(ch.name, e)
	for _, sh := range ch.shards {
		sh.publishTo(shardOp{kind: opPublish, seq: ch.seq, frame: frame})
	}
}

// broadcast sends frame to every member without keeping it in history.
func (ch *channel) broadcast(frame []byte) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, sh := range ch.shards {
		sh.publishTo(shardOp{kind: opPublish, always: true, frame: frame})
	}
}

func (sh *shard) run() {
	defer sh.pub.Close()
	defer sh.ctl.Close()
	var pubs, ctls []shardOp
	for {
		select {
		case <-sh.pub.Ready():
		case <-sh.ctl.Ready():
		case <-sh.ch.done:
			return
		}
		ctls = sh.ctl.Take(ctls)
		for _, op := range ctls {
			switch op.kind {
			case opJoin:
				sh.join(op)
			case opLeave:
				sh.leave(op)
			case opStop:
				sh.ch.stop()
				return
			}
		}
		pubs = sh.pub.Take(pubs)
		for _, op := range pubs {
			sh.fanout(op)
		}
	}
}

func (sh *shard) join(op shardOp) {
	c := op.c
	if _, ok := sh.index[c]; ok {
		return
	}
	ch := sh.ch
	snap := ch.snap.Load()
	sh.index[c] = len(sh.members)
	sh.members = append(sh.members, member{c: c, since: snap.seq})
	j := joinedMsg{Type: "joined", Channel: ch.name, Ref: op.ref}
	if ch.kind == KindWorld {
		n := ch.srv.players.online.Load()
		j.Online = &n
	}
	b, _ := json.Marshal(j)
	if c.conn.Send(b) != nil {
		return
	}
	for _, f := range snap.historyFrames(ch.name, ch.srv.cfg.HistoryFrame) {
		if c.conn.Send(f) != nil {
			return
		}
	}
}

func (sh *shard) leave(op shardOp) {
	c := op.c
	i, ok := sh.index[c]
	if !ok {
		return
	}
	last := len(sh.members) - 1
	if i != last {
		sh.members[i] = sh.members[last]
		sh.index[sh.members[i].c] = i
	}
	sh.members[last] = member{}
	sh.members = sh.members[:last]
	delete(sh.index, c)
	if op.reply {
		b, _ := json.Marshal(leftMsg{Type: "left", Channel: sh.ch.name, Ref: op.ref})
		_ = c.conn.Send(b)
	}
}

func (sh *shard) fanout(op shardOp) {
	start := time.Now()
	m := sh.ch.srv.m
	n := 0
	for _, mb := range sh.members {
		if !op.always && mb.since >= op.seq {
			continue
		}
		if err := mb.c.conn.Send(op.frame); err != nil {
			if errors.Is(err, wsconn.ErrSlowConsumer) {
				m.slowConsumers.Inc()
				sh.ch.srv.log.Debug("chat slow consumer disconnected", "player", mb.c.sender.UUID, "channel", sh.ch.name)
			}
			continue
		}
		n++
	}
	m.delivered.Add(float64(n))
	m.fanout.Observe(time.Since(start).Seconds())
}

// hub is the registry of live channels. world and announce live as long as
// the server; a room channel exists while it has members.
type hub struct {
	srv      *Server
	mu       sync.Mutex
	world    *channel
	announce *channel
	rooms    map[string]*channel
}

func newHub(s *Server) *hub {
	h := &hub{srv: s, rooms: make(map[string]*channel)}
	h.world = s.newChannel(ChannelWorld, KindWorld)
	h.world.refs = 1
	h.announce = s.newChannel(ChannelAnnounce, KindAnnounce)
	h.announce.refs = 1
	return h
}

// acquire returns the channel named name, creating it if needed, and
// counts one more member on it. Every acquire is paired with a release.
func (h *hub) acquire(name string, kind ChannelKind) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ch *channel
	switch kind {
	case KindWorld:
		ch = h.world
	case KindAnnounce:
		ch = h.announce
	default:
		ch = h.rooms[name]
		if ch == nil {
			ch = h.srv.newChannel(name, kind)
			h.rooms[name] = ch
		}
	}
	ch.refs++
	return ch
}

// release counts one member less on ch; a room channel with none left is
// stopped (after the shard has handled the member's leave) and forgotten.
func (h *hub) release(ch *channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch.refs--
	if ch.refs > 0 {
		return
	}
	if h.rooms[ch.name] == ch {
		delete(h.rooms, ch.name)
	}
	// Room channels have one shard: the stop is queued after the last
	// member's leave, so that member still gets its "left".
	for _, sh := range ch.shards {
		_ = sh.stopReq.Post(shardOp{kind: opStop}) // ErrClosed: stopped already
	}
}

// stop stops every channel (server shutdown).
func (h *hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := []*channel{h.world, h.announce}
	for _, ch := range h.rooms {
		all = append(all, ch)
	}
	for _, ch := range all {
		ch.stop()
	}
	h.rooms = make(map[string]*channel)
}
