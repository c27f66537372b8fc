package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/playerdb"

	"golang.org/x/time/rate"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/wsconn"
)

// Limits of /v1/play.
const (
	playMaxMessage = 4 << 10 // bytes per message
	playRate       = 5.0     // messages per second per socket
	playBurst      = 20
	playStrikes    = 20 // rate-limited messages before the socket is closed
)

// playRoutes registers the player flow: login, /v1/play, tickets, maps.
func (d *Dispatcher) playRoutes() {
	d.identityRoutes()
	d.mux.HandleFunc("GET /v1/play", d.handlePlay)
	d.mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.mm.Stats())
	})
	d.ticketRoutes()
	d.mapRoutes()
}

// sessions tracks each player's /v1/play socket: at most one per uuid (a
// new one replaces the old, which gets an error and is closed). It is the
// matchmaker's matchmaking.Notifier.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*playSession
	// revoked holds the players whose tokens were revoked in the last
	// minute (revokedKeep): when their tokens are valid from. A socket
	// whose token passed its check just before a revocation was stored
	// opens after it; add refuses it.
	revoked  map[string]revocation
	next     atomic.Uint64
	stopping atomic.Bool // goodbye has begun: new sockets are sent away at once
}

type playSession struct {
	id      uint64
	claims  auth.Claims
	conn    *wsconn.Conn
	limit   *rate.Limiter // playRate, playBurst
	strikes int           // read goroutine only
}

// revocation is when a player's tokens are valid from (unix s), and when
// the dispatcher stored it.
type revocation struct {
	from int64
	at   time.Time
}

// revokedKeep is how long sessions remembers a revocation: far longer
// than a socket takes from its token check to its open.
const revokedKeep = time.Minute

func newSessions() *sessions {
	return &sessions{byID: map[string]*playSession{}, revoked: map[string]revocation{}}
}

// revokedMsg is what a /v1/play socket opened with a revoked token hears
// before it is closed.
var revokedMsg = errMsg("revoked_token", "player token revoked: the account's password was changed or it signed out its other devices; sign in again")

// revoke closes uuid's socket when its token was issued before from (it
// hears revokedMsg, then a close with 1008), and refuses such a socket
// that opens within revokedKeep.
func (s *sessions) revoke(uuid string, from int64) {
	now := time.Now()
	s.mu.Lock()
	for id, rv := range s.revoked {
		if now.Sub(rv.at) > revokedKeep {
			delete(s.revoked, id)
		}
	}
	s.revoked[uuid] = revocation{from: from, at: now}
	ps := s.byID[uuid]
	s.mu.Unlock()
	if ps != nil && ps.claims.IssuedAt < from {
		_ = ps.conn.SendJSON(revokedMsg)
		ps.conn.Close(wsconn.ClosePolicy, "revoked_token")
	}
}

// Notify implements matchmaking.Notifier.
func (s *sessions) Notify(uuid string, msg any) {
	s.mu.Lock()
	ps := s.byID[uuid]
	s.mu.Unlock()
	if ps != nil {
		_ = ps.conn.SendJSON(msg)
	}
}

// add makes ps its player's current socket and returns the one it
// replaces. A socket whose token was revoked since its check is not added
// (revoked true).
func (s *sessions) add(ps *playSession) (old *playSession, revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rv, ok := s.revoked[ps.claims.Subject]; ok && ps.claims.IssuedAt < rv.from {
		return nil, true
	}
	old = s.byID[ps.claims.Subject]
	s.byID[ps.claims.Subject] = ps
	return old, false
}

// restartMsg is what every /v1/play socket hears when the dispatcher stops.
var restartMsg = errMsg("restarting", "the dispatcher is restarting: reconnect and queue again")

// sendAway tells c the dispatcher is stopping and closes it with 1012.
func sendAway(c *wsconn.Conn) {
	_ = c.SendJSON(restartMsg)
	c.Close(wsconn.CloseServiceRestart, "dispatcher restarting")
}

// goodbye sends every /v1/play socket a "restarting" error and a close
// frame with code 1012 (Service Restart), and waits until each socket's
// close has been answered (or has timed out: wsconn closes the socket 2 s
// after its close frame), or until wait passes. Sockets that open later
// are sent away at once.
func (s *sessions) goodbye(wait time.Duration) {
	s.stopping.Store(true)
	s.mu.Lock()
	all := make([]*playSession, 0, len(s.byID))
	for _, ps := range s.byID {
		all = append(all, ps)
	}
	s.mu.Unlock()
	for _, ps := range all {
		sendAway(ps.conn)
	}
	deadline := time.Now().Add(wait)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := len(s.byID)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		<-t.C
	}
}

// remove drops ps if it is still the player's current session.
func (s *sessions) remove(ps *playSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[ps.claims.Subject] == ps {
		delete(s.byID, ps.claims.Subject)
		return true
	}
	return false
}

// current reports whether ps is its player's current socket.
func (s *sessions) current(ps *playSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[ps.claims.Subject] == ps
}

// currentID is the id of uuid's current socket (0: none).
func (s *sessions) currentID(uuid string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.byID[uuid]; ps != nil {
		return ps.id
	}
	return 0
}

// Online returns how many players have a /v1/play socket.
func (s *sessions) Online() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// handlePlay serves ws://HOST/v1/play?token=PLAYER_TOKEN. A missing or bad
// token is refused with HTTP 401 before the upgrade.
func (d *Dispatcher) handlePlay(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	ps := &playSession{id: d.sessions.next.Add(1), claims: c, limit: rate.NewLimiter(playRate, playBurst)}
	if _, err := d.playWS.Upgrade(w, r, ps); err != nil {
		d.log.Debug("play upgrade failed", "err", err)
	}
}

// playHandler handles /v1/play sockets.
type playHandler struct{ d *Dispatcher }

func (h playHandler) OnOpen(c *wsconn.Conn) {
	ps := c.Value.(*playSession)
	ps.conn = c
	if h.d.sessions.stopping.Load() {
		sendAway(c)
		return
	}
	old, revoked := h.d.sessions.add(ps)
	if revoked {
		_ = c.SendJSON(revokedMsg)
		c.Close(wsconn.ClosePolicy, "revoked_token")
		return
	}
	if old != nil {
		_ = old.conn.SendJSON(map[string]string{"type": "error", "code": "replaced", "message": "another connection of this player took over"})
		old.conn.Close(wsconn.ClosePolicy, "replaced")
	}
	// The player's queue entry is carried by its newest socket.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.d.mm.Takeover(ctx, ps.claims.Subject, ps.id)
	st := h.d.mm.Status(ctx, ps.claims.Subject)
	_ = c.SendJSON(map[string]any{"type": "welcome", "uuid": ps.claims.Subject, "username": ps.claims.Name, "queue": st})
}

func (h playHandler) OnClose(c *wsconn.Conn, _ error) {
	ps, _ := c.Value.(*playSession)
	if ps == nil || ps.conn == nil {
		return
	}
	if h.d.sessions.remove(ps) {
		// The player's last socket closed: it leaves the queue (a
		// backend's ticket stays).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.d.mm.Cancel(ctx, ps.claims.Subject, ps.id)
		cancel()
	}
}

// playMsg is every message a client may send on /v1/play.
type playMsg struct {
	Type    string   `json:"type"`
	Profile string   `json:"profile"`
	Mode    string   `json:"mode"` // the profile, under its old name
	Party   []string `json:"party"`
	// Search are the player's own search fields, limited to those its
	// profile lets players set.
	Search matchmaking.SearchFields `json:"search_fields"`
}

// allow spends one message of the socket's budget (playRate, playBurst);
// a message over it is refused with rate_limited, and the playStrikes-th
// refusal closes the socket with 1008.
func (ps *playSession) allow(c *wsconn.Conn) bool {
	if ps.limit.Allow() {
		return true
	}
	ps.strikes++
	if ps.strikes >= playStrikes {
		_ = c.SendJSON(errMsg("rate_limited", "too many messages; closing"))
		c.Close(wsconn.ClosePolicy, "flood")
		return false
	}
	_ = c.SendJSON(errMsg("rate_limited", "too many messages; slow down"))
	return false
}

// AllowPing implements wsconn.PingLimiter: a WebSocket ping spends the
// socket's budget like a message.
func (h playHandler) AllowPing(c *wsconn.Conn) bool {
	ps, _ := c.Value.(*playSession)
	return ps == nil || ps.allow(c)
}

func (h playHandler) OnMessage(c *wsconn.Conn, data []byte) {
	ps := c.Value.(*playSession)
	if !ps.allow(c) {
		return
	}
	var m playMsg
	if err := json.Unmarshal(data, &m); err != nil {
		_ = c.SendJSON(errMsg("bad_json", "messages are JSON objects with a \"type\""))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := h.d
	switch m.Type {
	case "queue":
		if len(m.Party) > 16 {
			_ = c.SendJSON(errMsg("bad_party", "party too long"))
			return
		}
		prof, err := d.profile(ctx, ps.claims, m.Mode)
		if err != nil {
			_ = c.SendJSON(errMsg("store_unavailable", "player store unavailable; try again"))
			return
		}
		profile := m.Profile
		if profile == "" {
			profile = strings.ToLower(m.Mode)
		}
		st, err := d.mm.Enqueue(ctx, matchmaking.Enqueue{Player: prof, Profile: profile, Party: m.Party, Search: m.Search, Source: matchmaking.SourcePlay, Session: ps.id})
		if err != nil {
			_ = c.SendJSON(queueErrMsg(err, st))
			return
		}
		if !d.sessions.current(ps) {
			// Replaced while queueing: the entry goes to the newest
			// socket, or is cancelled when the player has none left.
			if id := d.sessions.currentID(ps.claims.Subject); id != 0 {
				_ = d.mm.Takeover(ctx, ps.claims.Subject, id)
			} else {
				_ = d.mm.Cancel(ctx, ps.claims.Subject, ps.id)
			}
			return
		}
		out := map[string]any{"type": "queued", "profile": st.Profile, "mode": st.Profile, "score": prof.Score, "expires": st.Expires}
		if len(st.Pending) > 0 {
			out["type"] = "party"
			out["party_pending"] = st.Pending
		}
		_ = c.SendJSON(out)
	case "cancel":
		if err := d.mm.Cancel(ctx, ps.claims.Subject, 0); err != nil {
			_ = c.SendJSON(queueErrMsg(err, matchmaking.QueueStatus{}))
			return
		}
		_ = c.SendJSON(map[string]string{"type": "cancelled"})
	case "status":
		_ = c.SendJSON(map[string]any{"type": "status", "queue": d.mm.Status(ctx, ps.claims.Subject)})
	case "ping":
		_ = c.SendJSON(map[string]any{"type": "pong", "time": time.Now().UnixMilli()})
	case "":
		_ = c.SendJSON(errMsg("bad_message", "missing \"type\""))
	default:
		_ = c.SendJSON(errMsg("unknown_type", "unknown message type"))
	}
}

// profile reads the player's rating in mode from its record in the
// player database, through the cache (never from the client); a player
// with no record, or none in mode, gets playerdb.DefaultRating.
func (d *Dispatcher) profile(ctx context.Context, c auth.Claims, mode string) (matchmaking.Player, error) {
	p, err := d.players.Player(ctx, c.Subject)
	if errors.Is(err, playerdb.ErrNotFound) {
		return matchmaking.Player{UUID: c.Subject, Username: c.Name, Photo: c.Photo, Score: playerdb.DefaultRating, Bot: c.Bot}, nil
	}
	if err != nil {
		return matchmaking.Player{}, err
	}
	return matchmaking.Player{UUID: c.Subject, Username: c.Name, Photo: c.Photo, Score: p.RatingIn(mode), Bot: c.Bot || p.Bot}, nil
}

func errMsg(code, msg string) map[string]string {
	return map[string]string{"type": "error", "code": code, "message": msg}
}

// queueErrMsg maps matchmaker errors to error messages.
func queueErrMsg(err error, st matchmaking.QueueStatus) map[string]any {
	m := map[string]any{"type": "error", "code": queueErrCode(err), "message": err.Error()}
	if st.State != "" && st.State != matchmaking.StateNone {
		m["queue"] = st
	}
	return m
}

// queueErrCode is the protocol error code of a queue error ("internal"
// for one it does not know).
func queueErrCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{errBadTicket, "bad_ticket"},
		{matchmaking.ErrAlreadyQueued, "already_queued"},
		{matchmaking.ErrInRoom, "in_room"},
		{matchmaking.ErrNotQueued, "not_queued"},
		{matchmaking.ErrPartyTooLarge, "party_too_large"},
		{matchmaking.ErrBadParty, "bad_party"},
		{matchmaking.ErrUnknownProfile, "unknown_profile"},
		{matchmaking.ErrBadSearchFields, "bad_search_fields"},
		{matchmaking.ErrFieldNotAllowed, "field_not_allowed"},
		{matchmaking.ErrQueueStopped, "unavailable"},
		{matchmaking.ErrBusy, "unavailable"},
		{context.DeadlineExceeded, "unavailable"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}
