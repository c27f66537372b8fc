package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bot states, as Status reports them.
const (
	StateStarting = "starting" // logging in, connecting
	StateQueued   = "queued"   // waiting for a match
	StateFighting = "fighting" // in a fight room
	StateResting  = "resting"  // between a result and the next queue
	StateBackoff  = "backoff"  // after an error, waiting to retry
)

// bot is one bot player: a real client that logs in, queues on /v1/play,
// joins the fight server it is matched to, plays, and queues again.
type bot struct {
	f    *Fleet
	slot int
	name string
	rng  *rand.Rand

	mu    sync.Mutex
	id    identity
	state string
	games int
	wins  int
	score int
	room  string
}

// BotInfo is one bot in Status.
type BotInfo struct {
	Name  string `json:"name"`
	UUID  string `json:"uuid,omitempty"`
	State string `json:"state"`
	Room  string `json:"room,omitempty"`
	Score int    `json:"score,omitempty"`
	Games int    `json:"games"`
	Wins  int    `json:"wins"`
}

func (b *bot) info() BotInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BotInfo{Name: b.name, UUID: b.id.UUID, State: b.state, Room: b.room, Score: b.score, Games: b.games, Wins: b.wins}
}

func (b *bot) setState(s, room string) {
	b.mu.Lock()
	b.state, b.room = s, room
	b.mu.Unlock()
}

// run plays until ctx is done, retrying with a growing pause (0.5 s to
// 10 s, jittered) after any failure.
func (b *bot) run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		b.setState(StateStarting, "")
		progressed, err := b.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = 500 * time.Millisecond
		}
		if err != nil {
			b.f.errored(b, err)
		}
		b.setState(StateBackoff, "")
		wait := backoff/2 + time.Duration(b.rng.Int64N(int64(backoff)))
		backoff = min(2*backoff, 10*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// session logs in when needed, connects to /v1/play and loops queue →
// match → fight → rest until an error. progressed reports whether at least
// one fight was played (which resets the retry pause).
func (b *bot) session(ctx context.Context) (progressed bool, err error) {
	cl := b.f.client
	b.mu.Lock()
	id := b.id
	b.mu.Unlock()
	if id.Token == "" || (!id.expires.IsZero() && time.Until(id.expires) < time.Minute) {
		id, err = cl.login(ctx, b.name, b.f.cfg.Photo)
		if err != nil {
			return false, err
		}
		b.mu.Lock()
		b.id, b.score = id, id.Score
		b.mu.Unlock()
		b.f.log.Debug("bot logged in", "bot", b.name, "uuid", id.UUID)
	}
	play, err := dial(ctx, cl.playURL(id.Token))
	if err != nil {
		// A refused upgrade does not say why; ask /v1/me whether the token
		// is still good.
		if merr := cl.me(ctx, id.Token); errors.Is(merr, ErrUnauthorized) {
			b.forget()
		}
		return false, fmt.Errorf("connect play: %w", err)
	}
	defer play.close()
	// lost is the last room whose fight server went away under the bot:
	// the dispatcher may send its match again later, even after the bot
	// played another room meanwhile.
	lost := ""
	for {
		if time.Until(id.expires) < time.Minute && !id.expires.IsZero() {
			b.forget()
			return progressed, nil // log in again
		}
		m, err := b.queue(ctx, play)
		if err != nil {
			return progressed, err
		}
		b.setState(StateFighting, m.Room)
		out, err := b.fight(ctx, m)
		if ctx.Err() != nil {
			return progressed, nil
		}
		if errors.Is(err, errRoomLost) {
			// The room's fight server went away mid-room: the dispatcher
			// either places the room again from its saved state (a match
			// for the same room comes on /v1/play) or fails it
			// (room_failed). queue follows either at once, with no rest.
			b.f.log.Debug("bot's room closed without a result; following it", "bot", b.name, "room", m.Room, "err", err)
			lost = m.Room
			continue
		}
		if errors.Is(err, errRoomOver) && m.Room == lost {
			// The room placed again ended (its other players finished
			// it) before this bot was back: not a failure.
			b.f.log.Debug("bot's room ended before it was back", "bot", b.name, "room", m.Room)
			err = nil
		} else if err == nil {
			progressed = true
			b.f.played(b, out)
		}
		if err != nil {
			b.f.errored(b, err)
		}
		b.setState(StateResting, "")
		rest := b.f.cfg.Rest/2 + time.Duration(b.rng.Int64N(int64(b.f.cfg.Rest)+1))
		select {
		case <-ctx.Done():
			return progressed, nil
		case <-play.closed:
			return progressed, fmt.Errorf("play socket closed: %v", play.err)
		case <-time.After(rest):
		}
	}
}

// forget drops the bot's token so the next session logs in again.
func (b *bot) forget() {
	b.mu.Lock()
	b.id.Token = ""
	b.mu.Unlock()
}

// playMsg is a message of the /v1/play socket (docs/PROTOCOL.md).
type playMsg struct {
	Type    string `json:"type"`
	Players []struct {
		UUID     string `json:"uuid"`
		Username string `json:"username"`
		Bot      bool   `json:"bot"`
	} `json:"players"`
	Room    string `json:"room"`
	Fight   string `json:"fight"`
	Ticket  string `json:"ticket"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// queue sends {"type":"queue"} and waits for the match. room_failed and
// cancelled queue again; an error message fails the session (after
// forgetting the token when the error is about it).
func (b *bot) queue(ctx context.Context, play *socket) (playMsg, error) {
	req := map[string]string{"type": "queue"}
	if b.f.cfg.Mode != "" {
		req["mode"] = b.f.cfg.Mode
	}
	q, _ := json.Marshal(req)
	if err := play.send(q); err != nil {
		return playMsg{}, fmt.Errorf("queue: %w", err)
	}
	b.setState(StateQueued, "")
	for {
		select {
		case <-ctx.Done():
			return playMsg{}, ctx.Err()
		case <-play.closed:
			return playMsg{}, fmt.Errorf("queue: play socket closed: %v", play.err)
		case raw := <-play.in:
			var m playMsg
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			switch m.Type {
			case "match":
				if m.Fight == "" || m.Ticket == "" {
					return m, fmt.Errorf("queue: %w: match without fight address or ticket", ErrRefused)
				}
				return m, nil
			case "room_failed", "cancelled":
				if err := play.send(q); err != nil {
					return playMsg{}, fmt.Errorf("queue: %w", err)
				}
			case "error":
				switch {
				case isTokenError(m.Code):
					b.forget()
					return m, fmt.Errorf("queue: %w: %s", ErrUnauthorized, m.Code)
				case m.Code == "already_queued", m.Code == "no_capacity", m.Code == "rate_limited":
					// Still queued (or a duplicate queue request): keep waiting.
					continue
				case m.Code == "room_failed":
					// The fight server of the room died: queue again.
					if err := play.send(q); err != nil {
						return playMsg{}, fmt.Errorf("queue: %w", err)
					}
					continue
				case m.Code == "in_room":
					// The last room's end has not reached the dispatcher yet.
					select {
					case <-ctx.Done():
						return playMsg{}, ctx.Err()
					case <-time.After(time.Second):
					}
					if err := play.send(q); err != nil {
						return playMsg{}, fmt.Errorf("queue: %w", err)
					}
					continue
				}
				return m, fmt.Errorf("queue: %w: %s: %s", ErrRefused, m.Code, clip(m.Message, 120))
			}
		}
	}
}

// errRoomLost: a room's socket closed without a result (its fight server
// died or the connection broke); not a failure of the bot.
var errRoomLost = errors.New("room lost")

func isTokenError(code string) bool {
	switch code {
	case "unauthorized", "no_token", "expired_token", "bad_token":
		return true
	}
	return false
}

// fight joins the room of m and plays it to its result.
func (b *bot) fight(ctx context.Context, m playMsg) (*Outcome, error) {
	u, err := url.Parse(m.Fight)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return nil, fmt.Errorf("fight: %w: bad fight address", ErrRefused)
	}
	q := u.Query()
	q.Set("ticket", m.Ticket)
	u.RawQuery = q.Encode()
	// A room never lasts longer than the fight server's room timeout;
	// this bound only guards against a server that goes silent.
	ctx, cancel := context.WithTimeout(ctx, b.f.cfg.MaxFight)
	defer cancel()
	s, err := dial(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("fight: join room %s: %w", m.Room, err)
	}
	defer s.close()
	b.mu.Lock()
	me := b.id.UUID
	b.mu.Unlock()
	g := newGame(me, b.rng, b.f.cfg.AttackMin, b.f.cfg.AttackMax)
	g.room = m.Room
	for _, p := range m.Players {
		if p.Bot || strings.HasPrefix(p.Username, "bot-") {
			g.bots[p.UUID] = true
		}
	}
	tick := time.NewTicker(b.f.cfg.Think)
	defer tick.Stop()
	return playRoom(ctx, s, g, m.Room, tick.C)
}

// roomConn is what playRoom needs of a fight socket; *socket is the real
// one.
type roomConn interface {
	send([]byte) error
	messages() <-chan []byte
	done() <-chan struct{}
	closeErr() error
}

// playRoom plays one room on s until its result: it applies the server's
// messages to g and, on every think tick, sends what g decides. A socket
// that closes, or a send that finds it closed (the server may close just
// after the result, which is then still buffered), ends the room with the
// result or refusal already received, and otherwise with errRoomLost.
func playRoom(ctx context.Context, s roomConn, g *game, room string, think <-chan time.Time) (*Outcome, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fight: room %s: %w", room, ctx.Err())
		case <-s.done():
			return closedRoom(s, g, room)
		case raw := <-s.messages():
			if out, err := applyMsg(g, raw, room); out != nil || err != nil {
				return out, err
			}
		case now := <-think:
			for _, msg := range g.act(now) {
				if err := s.send(msg); err != nil {
					// A failed send closes the connection (wsconn): wait
					// for the close, then read what came before it.
					select {
					case <-s.done():
						return closedRoom(s, g, room)
					case <-ctx.Done():
						return nil, fmt.Errorf("fight: room %s: send: %w", room, err)
					}
				}
			}
		}
	}
}

// applyMsg applies one server message of the room to g: the room's
// outcome once it ended, or why the server refused the bot.
func applyMsg(g *game, raw []byte, room string) (*Outcome, error) {
	out, err := g.apply(raw, time.Now())
	if err != nil {
		return nil, fmt.Errorf("fight: room %s: %w", room, err)
	}
	return out, nil
}

// closedRoom ends a room whose socket closed: messages may still be
// buffered after the close (the result is sent just before it).
func closedRoom(s roomConn, g *game, room string) (*Outcome, error) {
	for {
		select {
		case raw := <-s.messages():
			if out, err := applyMsg(g, raw, room); out != nil || err != nil {
				return out, err
			}
		default:
			return nil, fmt.Errorf("fight: room %s closed without a result: %v: %w", room, s.closeErr(), errRoomLost)
		}
	}
}

// botNames are the bots' display names, prefixed with "bot-" so every
// client can tell them apart even without the "bot" flag.
var botNames = strings.Fields(`Ada Babbage Curie Dijkstra Euler Fermi Gauss Hopper Iverson Joule
Knuth Lovelace Maxwell Noether Ohm Pascal Quine Ritchie Shannon Turing Ulam Volta Wirth Yonath Zuse`)

// BotName returns the name of bot slot i: "bot-Ada", ..., then "bot-Ada2".
func BotName(i int) string {
	n := "bot-" + botNames[i%len(botNames)]
	if r := i / len(botNames); r > 0 {
		n += fmt.Sprint(r + 1)
	}
	return n
}
