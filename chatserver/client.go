package chatserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/wsconn"
	"golang.org/x/time/rate"
)

// client is one chat connection. Everything but conn's Send is touched only
// on the connection's read goroutine (wsconn calls OnOpen, OnMessage and
// OnClose there, in order).
type client struct {
	srv      *Server
	id       uint64
	conn     *wsconn.Conn
	player   *player
	sender   Sender
	operator bool
	channels map[string]membership
	strikes  *rate.Limiter // rate-limited messages this connection may still send before it is closed
}

// membership is a connection's place in one channel: the channel and the
// reservation its leave is posted through.
type membership struct {
	ch    *channel
	leave *mailbox.Reservation[shardOp]
}

// connHandler adapts the Server to wsconn.Handler.
type connHandler struct{ s *Server }

func (h connHandler) OnOpen(c *wsconn.Conn) {
	s := h.s
	cl := c.Value.(*client)
	cl.conn = c
	cl.player = s.players.add(cl)
	s.m.connections.Inc()
	if s.draining.Load() {
		c.Close(wsconn.CloseGoingAway, "server shutting down")
		return
	}
	b, _ := json.Marshal(welcomeMsg{
		Type: "welcome", UUID: cl.sender.UUID, Username: cl.sender.Username, Operator: cl.operator,
		Limits: welcomeLimit{
			Text: s.cfg.MaxText, Rate: s.cfg.Rate, Burst: s.cfg.Burst, History: s.cfg.HistorySize,
			MaxChannels: s.cfg.MaxChannels, MaxFrame: s.cfg.WS.MaxMessage,
		},
	})
	_ = c.Send(b)
	for _, name := range []string{ChannelWorld, ChannelAnnounce} {
		kind, _ := ParseChannel(name)
		if err := cl.joinChannel(name, kind, ""); err != nil {
			cl.fail(err, "")
		}
	}
}

func (h connHandler) OnMessage(c *wsconn.Conn, data []byte) {
	c.Value.(*client).handle(data)
}

func (h connHandler) OnClose(c *wsconn.Conn, _ error) {
	s := h.s
	cl := c.Value.(*client)
	if cl.player == nil {
		return
	}
	for name, mb := range cl.channels {
		cl.leaveChannel(name, mb, false, "")
	}
	s.players.remove(cl)
	s.m.connections.Dec()
}

// AllowPing implements wsconn.PingLimiter: a WebSocket ping spends the
// player's budget like a message.
func (h connHandler) AllowPing(c *wsconn.Conn) bool {
	cl, _ := c.Value.(*client)
	return cl == nil || cl.player == nil || cl.allow(time.Now())
}

// allow spends one message of the player's budget; a message over it is
// refused with rate_limited, and a connection that keeps going past its
// strikes is closed with 1008.
func (cl *client) allow(now time.Time) bool {
	s := cl.srv
	if cl.player.bucket.AllowN(now, 1) {
		return true
	}
	s.m.rejected.WithLabelValues(CodeRateLimited).Inc()
	if !cl.strikes.AllowN(now, 1) {
		s.m.floodCloses.Inc()
		s.log.Info("chat connection closed for flooding", "player", cl.sender.UUID)
		cl.conn.Close(wsconn.ClosePolicy, "flooding: over the message rate limit")
		return false
	}
	cl.send(encodeError(CodeRateLimited,
		fmt.Sprintf("slow down: at most %g messages per second (burst %d) per player", s.cfg.Rate, s.cfg.Burst), ""))
	return false
}

// handle processes one client frame.
func (cl *client) handle(data []byte) {
	s := cl.srv
	now := time.Now()
	if !cl.allow(now) {
		return
	}
	in, err := ParseInbound(data, s.cfg.MaxText)
	if err != nil {
		cl.fail(err, in.Ref)
		return
	}
	switch in.Type {
	case "ping":
		b, _ := json.Marshal(struct {
			Type string `json:"type"`
			Ref  string `json:"ref,omitempty"`
		}{"pong", in.Ref})
		cl.send(b)
	case "join":
		err = cl.join(in)
	case "leave":
		err = cl.leave(in)
	case "post":
		err = cl.post(in, now)
	case "private":
		err = cl.private(in, now)
	}
	if err != nil {
		cl.fail(err, in.Ref)
	}
}

func (cl *client) send(b []byte) { _ = cl.conn.Send(b) }

// fail sends err as an error frame.
func (cl *client) fail(err error, ref string) {
	pe := asProtocolError(err)
	if pe.Code == CodeInternal {
		cl.srv.log.Warn("chat request failed", "player", cl.sender.UUID, "err", err)
	}
	cl.srv.m.rejected.WithLabelValues(pe.Code).Inc()
	cl.send(encodeError(pe.Code, pe.Message, ref))
}

func (cl *client) ack(ref, id string) {
	if ref == "" {
		return
	}
	b, _ := json.Marshal(ackMsg{Type: "ack", Ref: ref, ID: id})
	cl.send(b)
}

func (cl *client) join(in Inbound) error {
	kind, err := ParseChannel(in.Channel)
	if err != nil {
		return err
	}
	if kind == KindRoom {
		if err := cl.checkRoomToken(strings.TrimPrefix(in.Channel, RoomPrefix), in.Token); err != nil {
			return err
		}
	}
	return cl.joinChannel(in.Channel, kind, in.Ref)
}

// checkRoomToken allows room roomID to a connection presenting a room token
// that names that room and this connection's player.
func (cl *client) checkRoomToken(roomID, token string) error {
	if token == "" {
		return perr(CodeBadToken, "joining room:%s needs its room token in \"token\"", roomID)
	}
	c, err := cl.srv.signer.Verify(auth.KindRoom, token)
	switch {
	case errors.Is(err, auth.ErrExpired):
		return perr(CodeBadToken, "room token expired")
	case errors.Is(err, auth.ErrWrongKind):
		return perr(CodeBadToken, "not a room token")
	case err != nil:
		return perr(CodeBadToken, "invalid room token")
	case c.Subject != cl.sender.UUID:
		return perr(CodeForbidden, "this room token belongs to another player")
	case c.Room != roomID:
		return perr(CodeForbidden, "this room token is for another room")
	}
	return nil
}

func (cl *client) joinChannel(name string, kind ChannelKind, ref string) error {
	s := cl.srv
	if _, ok := cl.channels[name]; ok {
		return perr(CodeAlreadyJoined, "already in %s", name)
	}
	if len(cl.channels) >= s.cfg.MaxChannels {
		return perr(CodeTooMany, "at most %d channels per connection", s.cfg.MaxChannels)
	}
	ch := s.hub.acquire(name, kind)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.waitReady(ctx); err != nil {
		s.hub.release(ch)
		return fmt.Errorf("join %s: %w", name, err)
	}
	// The world count includes this player before the shard sends
	// "joined" with it.
	if kind == KindWorld {
		s.players.worldDelta(cl.player, +1)
	}
	sh := ch.shardFor(cl)
	leave := sh.ctl.Reserve()
	if err := sh.ctl.Post(shardOp{kind: opJoin, c: cl, ref: ref}); err != nil {
		if kind == KindWorld {
			s.players.worldDelta(cl.player, -1)
		}
		s.hub.release(ch)
		return perr(CodeChannelBusy, "%s is busy; try again in a moment", name)
	}
	cl.channels[name] = membership{ch: ch, leave: leave}
	return nil
}

func (cl *client) leave(in Inbound) error {
	mb, ok := cl.channels[in.Channel]
	if !ok {
		return perr(CodeNotJoined, "not in %s", in.Channel)
	}
	cl.leaveChannel(in.Channel, mb, true, in.Ref)
	return nil
}

func (cl *client) leaveChannel(name string, mb membership, reply bool, ref string) {
	delete(cl.channels, name)
	if mb.ch.kind == KindWorld {
		cl.srv.players.worldDelta(cl.player, -1)
	}
	_ = mb.leave.Post(shardOp{kind: opLeave, c: cl, reply: reply, ref: ref}) // ErrClosed: the channel stopped
	cl.srv.hub.release(mb.ch)
}

func (cl *client) post(in Inbound, now time.Time) error {
	s := cl.srv
	mb, ok := cl.channels[in.Channel]
	if !ok {
		return perr(CodeNotJoined, "join %s before posting to it", in.Channel)
	}
	ch := mb.ch
	if ch.kind == KindAnnounce && !cl.operator {
		return perr(CodeForbidden, "only the operator may post to announce")
	}
	if ch.limiter != nil && !ch.limiter.AllowN(now, 1) {
		return perr(CodeChannelBusy, "%s is busy; try again in a moment", ch.name)
	}
	msg, frame := s.encodeMessage(ch.name, cl.sender, in.Text)
	ch.publish(entry{id: msg.ID, raw: frame}, frame)
	s.m.accepted.WithLabelValues(ch.kind.String()).Inc()
	cl.ack(in.Ref, msg.ID)
	return nil
}

// private delivers a message to every connection of in.To and, as the
// sender's copy, to every connection of the sender. Nobody else sees it.
// Private messages are not kept.
func (cl *client) private(in Inbound, now time.Time) error {
	s := cl.srv
	to := s.players.connsOf(in.To)
	if len(to) == 0 {
		return perr(CodeOffline, "%s is not connected to chat", in.To)
	}
	msg := Message{Type: "private", To: in.To, ID: s.newID(), TS: now.UnixMilli(), From: cl.sender, Text: in.Text}
	frame, _ := json.Marshal(msg)
	for _, c := range to {
		_ = c.conn.Send(frame)
	}
	if in.To != cl.sender.UUID {
		for _, c := range s.players.connsOf(cl.sender.UUID) {
			_ = c.conn.Send(frame)
		}
	}
	s.m.accepted.WithLabelValues("private").Inc()
	cl.ack(in.Ref, msg.ID)
	return nil
}
