// Package chatserver is arena's chat server (`arena chat`): one WebSocket
// endpoint, ws://HOST:7600/ws?token=PLAYERTOKEN, with the channels world
// (everyone, joined on connect), announce (everyone reads, joined on
// connect; only the operator posts), room:ROOMID (members of that fight
// room, who present its room token) and private messages to a uuid.
//
// Every channel keeps its last 50 messages in memcached (HistoryKey), sent
// to whoever joins, so a restarted chat server keeps them. The sender of a
// message always comes from the connection's verified token. Each player
// has a token bucket shared by its connections; text is at most 500 runes;
// a client that does not read is disconnected by wsconn's bounded queue.
// The wire protocol is documented in docs/chat.md.
//
// New builds a Server from explicit dependencies (store, signer, config,
// logger) for tests and for the command; NewProcess wraps it as a fleet
// process for the dispatcher.
package chatserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/httpguard"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/safetext"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
)

// ErrDraining is returned by Serve after Shutdown began, and answered as
// HTTP 503 to upgrades that arrive while draining.
var ErrDraining = errors.New("chat server is draining")

// Server is a chat server. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	st      store.Store
	signer  *auth.Signer
	log     *slog.Logger
	m       *metrics
	ws      *wsconn.Server
	hist    *historyLog
	hub     *hub
	players *players
	http    *http.Server
	guard   *httpguard.Guard

	idPrefix string
	msgSeq   atomic.Uint64
	connSeq  atomic.Uint64
	draining atomic.Bool

	stopTick chan struct{}
	tickDone chan struct{}
	stopOnce sync.Once
}

// New returns a Server that keeps history in st and verifies tokens with
// signer. It starts the server's own goroutines (channel shards, history
// writer, online counter); serve it with Serve or mount Handler, and stop
// it with Shutdown.
func New(st store.Store, signer *auth.Signer, cfg Config, log *slog.Logger) (*Server, error) {
	if st == nil || signer == nil {
		return nil, errors.New("new chat server: store and signer are required")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new chat server: %w", err)
	}
	s := &Server{
		cfg: cfg, st: st, signer: signer, log: log,
		m:        newMetrics(cfg.Registry),
		players:  newPlayers(cfg.Rate, cfg.Burst),
		idPrefix: auth.RandomID(4),
		stopTick: make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	s.hist = newHistoryLog(st, cfg.HistorySize, log, s.m)
	s.hub = newHub(s)
	s.ws = wsconn.NewServer(connHandler{s}, cfg.WS)
	s.guard = httpguard.New("chat", httpguard.Limits{}, cfg.Registry, log)
	s.http = s.guard.Server(httpguard.RequireJSON(s.Handler()))
	go s.tickOnline()
	return s, nil
}

// Handler returns the server's HTTP routes: GET /ws (the chat WebSocket),
// GET /healthz, GET /metrics and POST /v1/announce.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/announce", s.serveAnnounce)
	return mux
}

// Serve accepts connections on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	if s.draining.Load() {
		_ = ln.Close()
		return ErrDraining
	}
	err := s.http.Serve(s.guard.Listener(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve chat: %w", err)
}

// Connections returns the number of open chat connections.
func (s *Server) Connections() int { return int(s.players.conns.Load()) }

// Online returns the number of distinct players in the world channel.
func (s *Server) Online() int { return int(s.players.online.Load()) }

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown stops accepting connections, closes every chat connection with
// 1001 (going away), waits for them to finish (until ctx is done), then
// writes the pending history to the store (given up to 2 s more if ctx is
// already done). It returns ctx's error if the connections or the history
// did not finish in time. Calling it twice is safe.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	herr := s.http.Shutdown(ctx)
	for _, c := range s.players.all() {
		c.conn.Close(wsconn.CloseGoingAway, "server shutting down")
	}
	// Save what was posted so far while the connections close.
	go func() { _ = s.hist.Flush(ctx) }()
	var werr error
wait:
	for s.Connections() > 0 {
		select {
		case <-ctx.Done():
			werr = fmt.Errorf("shutdown chat: %d connections left: %w", s.Connections(), ctx.Err())
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.stopOnce.Do(func() { close(s.stopTick) })
	<-s.tickDone
	s.hub.stop()
	// History outranks the deadline: if ctx is spent, allow a short grace.
	hctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
	}
	cerr := s.hist.Close(hctx)
	return errors.Join(herr, werr, cerr)
}

// playerKeep is how long a player's rate bucket outlives its last
// connection.
const playerKeep = time.Minute

// tickOnline sends the world online count to world whenever it changed,
// at most once per OnlineInterval: one fan-out per interval however many
// players connect. It also forgets players gone for over playerKeep.
func (s *Server) tickOnline() {
	defer close(s.tickDone)
	t := time.NewTicker(s.cfg.OnlineInterval)
	defer t.Stop()
	var last int64
	nextSweep := time.Now().Add(playerKeep)
	for {
		select {
		case <-s.stopTick:
			return
		case now := <-t.C:
			if now.After(nextSweep) {
				s.players.sweep(now.Add(-playerKeep))
				nextSweep = now.Add(playerKeep)
			}
			n := s.players.online.Load()
			s.m.online.Set(float64(n))
			if n == last {
				continue
			}
			last = n
			b, _ := json.Marshal(onlineMsg{Type: "online", Channel: ChannelWorld, Count: n})
			s.hub.world.broadcast(b)
		}
	}
}

func (s *Server) newID() string {
	return s.idPrefix + "-" + strconv.FormatUint(s.msgSeq.Add(1), 36)
}

// writeHTTPError answers a refused request with the protocol's error shape.
func writeHTTPError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(encodeError(code, message, ""), '\n'))
}

// verifyPlayer checks a player token and maps its failure to a message.
func (s *Server) verifyPlayer(token string) (auth.Claims, string) {
	if token == "" {
		return auth.Claims{}, "missing player token: connect with ?token=PLAYERTOKEN"
	}
	c, err := s.signer.Verify(auth.KindPlayer, token)
	switch {
	case err == nil:
		return c, ""
	case errors.Is(err, auth.ErrExpired):
		return c, "player token expired: log in again"
	case errors.Is(err, auth.ErrWrongKind):
		return c, "not a player token"
	default:
		return c, "invalid player token"
	}
}

// revoked reports whether c's token was issued before the second from
// which its player's tokens are valid, as the dispatcher copied it to the
// store (records.TokensValidFrom) when the player changed its password or
// signed out its other devices. A store that fails or is slow (250 ms)
// lets the token through: chat stays up without memcached, and the copy
// is best effort (docs/PROTOCOL.md "Revoking tokens").
func (s *Server) revoked(ctx context.Context, c auth.Claims) bool {
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	from, err := records.TokensValidFrom(ctx, s.st, c.Subject)
	if err != nil {
		s.log.Debug("chat: revocation check skipped", "err", err)
		return false
	}
	return c.IssuedAt < from
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.m.refused.WithLabelValues("draining").Inc()
		writeHTTPError(w, http.StatusServiceUnavailable, CodeUnavailable, "chat server is draining; reconnect shortly")
		return
	}
	if s.Connections() >= s.cfg.MaxConns {
		s.m.refused.WithLabelValues("full").Inc()
		writeHTTPError(w, http.StatusServiceUnavailable, CodeUnavailable, "chat server is full")
		return
	}
	q := r.URL.Query()
	claims, why := s.verifyPlayer(q.Get("token"))
	if why == "" && s.revoked(r.Context(), claims) {
		why = "player token revoked: sign in again"
	}
	if why != "" {
		s.m.refused.WithLabelValues("token").Inc()
		writeHTTPError(w, http.StatusUnauthorized, CodeUnauthorized, why)
		return
	}
	operator := false
	if q.Has("operator") {
		if !auth.EqualSecret(q.Get("operator"), s.cfg.OperatorToken) {
			s.m.refused.WithLabelValues("operator").Inc()
			writeHTTPError(w, http.StatusUnauthorized, CodeUnauthorized, "wrong operator token")
			return
		}
		operator = true
	}
	c := &client{
		srv:      s,
		id:       s.connSeq.Add(1),
		operator: operator,
		sender: Sender{
			UUID:     claims.Subject,
			Username: clipRunes(safetext.StripName(claims.Name), MaxUsername),
			Bot:      claims.Bot,
		},
		channels: make(map[string]membership, 4),
		strikes:  rate.NewLimiter(1, s.cfg.FloodStrikes),
	}
	if _, err := s.ws.Upgrade(w, r, c); err != nil {
		s.m.refused.WithLabelValues("handshake").Inc()
		s.log.Debug("chat upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

// serveAnnounce posts {"text": ...} to announce for an operator presenting
// the operator token as "Authorization: Bearer TOKEN". The sender is
// {"uuid": "operator", "username": "operator"}.
func (s *Server) serveAnnounce(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !auth.EqualSecret(tok, s.cfg.OperatorToken) {
		writeHTTPError(w, http.StatusUnauthorized, CodeUnauthorized, "operator token required (Authorization: Bearer TOKEN)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<10+1))
	if err != nil || len(body) > 16<<10 {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, "body over 16 KiB")
		return
	}
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeHTTPError(w, http.StatusBadRequest, CodeBadJSON, `body is {"text": "..."}`)
		return
	}
	msg, err := s.Announce(r.Context(), Sender{UUID: "operator", Username: "operator"}, in.Text)
	if err != nil {
		pe := asProtocolError(err)
		writeHTTPError(w, http.StatusBadRequest, pe.Code, pe.Message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(msg)
}

// Announce posts text to the announce channel as from, for callers that
// already checked the operator's authority. Errors are *ProtocolError
// (too_long, bad_request) or the context's.
func (s *Server) Announce(ctx context.Context, from Sender, text string) (Message, error) {
	if err := checkText(text, s.cfg.MaxText); err != nil {
		return Message{}, err
	}
	ch := s.hub.announce
	if err := ch.waitReady(ctx); err != nil {
		return Message{}, fmt.Errorf("announce: %w", err)
	}
	msg, frame := s.encodeMessage(ch.name, from, text)
	ch.publish(entry{id: msg.ID, raw: frame}, frame)
	s.m.accepted.WithLabelValues(KindAnnounce.String()).Inc()
	return msg, nil
}

func (s *Server) encodeMessage(channel string, from Sender, text string) (Message, []byte) {
	msg := Message{Type: "message", Channel: channel, ID: s.newID(), TS: time.Now().UnixMilli(), From: from, Text: text}
	b, _ := json.Marshal(msg)
	return msg, b
}
