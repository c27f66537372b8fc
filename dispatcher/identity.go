package dispatcher

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"golang.org/x/time/rate"
)

// PlayerTokenTTL is how long a login lasts.
const PlayerTokenTTL = 24 * time.Hour

// CleanUsername trims name and checks it: 1 to 32 characters, letters,
// digits, spaces and common punctuation; no control or format characters.
func CleanUsername(name string) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 32 {
		return "", false
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '<' || r == '>' {
			return "", false
		}
	}
	return name, true
}

// ValidPhoto reports whether p is empty or an http(s) URL of at most 512
// bytes.
func ValidPhoto(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 512 {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// identityRoutes registers login, me, tokens and config.
func (d *Dispatcher) identityRoutes() {
	d.mux.HandleFunc("POST /v1/login", d.handleLogin)
	d.mux.HandleFunc("GET /v1/me", d.handleMe)
	d.mux.HandleFunc("POST /v1/tokens", d.backend(d.handleMintToken))
	d.mux.HandleFunc("GET /v1/config", d.handleConfig)
}

// LoginResponse is the answer to POST /v1/login.
type LoginResponse struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Photo    string `json:"photo"`
	Score    int    `json:"score"`
	Bot      bool   `json:"bot,omitempty"`
	Token    string `json:"token"`
	Expires  int64  `json:"expires"`
}

// handleLogin serves POST /v1/login: a guest identity. "bot": true is
// accepted only with the operator token (server-side bots).
func (d *Dispatcher) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username string `json:"username"`
		Photo    string `json:"photo"`
		Bot      bool   `json:"bot"`
	}
	isOperator := auth.EqualSecret(bearer(r), d.cfg.OperatorToken)
	if !d.cfg.GuestLogin && !isOperator {
		writeError(w, http.StatusForbidden, "guest_login_disabled", "guest login is off on this server")
		return
	}
	if !isOperator && !d.loginLimit.allow(clientIP(r), time.Now()) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many logins from this address; wait a little")
		return
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if body.Bot && !isOperator {
		writeError(w, http.StatusForbidden, "forbidden", "only the operator may log bots in")
		return
	}
	name, ok := CleanUsername(body.Username)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_username", "username must be 1 to 32 printable characters")
		return
	}
	if !ValidPhoto(body.Photo) {
		writeError(w, http.StatusBadRequest, "bad_photo", "photo must be empty or an http(s) URL up to 512 bytes")
		return
	}
	id := auth.NewUUID()
	rec, err := records.UpdatePlayer(r.Context(), d.store, id, func(p *records.Player) {
		p.Username, p.Photo, p.Bot = name, body.Photo, body.Bot
	})
	if err != nil {
		d.log.Error("login: save player", "err", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "player store unavailable; try again")
		return
	}
	tok, err := d.signer.Mint(auth.KindPlayer, auth.Claims{Subject: id, Name: name, Photo: body.Photo, Bot: body.Bot}, PlayerTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	writeJSON(w, http.StatusOK, LoginResponse{UUID: id, Username: name, Photo: body.Photo, Score: rec.Rating, Bot: body.Bot,
		Token: tok, Expires: time.Now().Add(PlayerTokenTTL).Unix()})
}

// playerFromRequest verifies the player token in "Authorization: Bearer"
// (or ?token=) and returns its claims, writing a 401 on failure.
func (d *Dispatcher) playerFromRequest(w http.ResponseWriter, r *http.Request) (auth.Claims, bool) {
	tok := bearer(r)
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "no_token", "a player token is required (POST /v1/login)")
		return auth.Claims{}, false
	}
	c, err := d.signer.Verify(auth.KindPlayer, tok)
	if err != nil {
		code := "bad_token"
		if errors.Is(err, auth.ErrExpired) {
			code = "expired_token"
		}
		writeError(w, http.StatusUnauthorized, code, "player token refused: "+code)
		return auth.Claims{}, false
	}
	return c, true
}

// handleMe serves GET /v1/me: the caller's player record.
func (d *Dispatcher) handleMe(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	p, _, err := records.GetPlayer(r.Context(), d.store, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		p = records.Player{UUID: c.Subject, Username: c.Name, Photo: c.Photo, Rating: records.DefaultRating, Bot: c.Bot}
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "player store unavailable")
		return
	}
	st := d.mm.Status(r.Context(), c.Subject)
	writeJSON(w, http.StatusOK, map[string]any{
		"uuid": p.UUID, "username": p.Username, "photo": p.Photo, "score": p.Rating,
		"games": p.Games, "wins": p.Wins, "bot": p.Bot, "queue": st,
	})
}

// handleMintToken serves POST /v1/tokens (backend token): a player token
// for an account the backend vouches for, so its clients can use /v1/play,
// fights, maps and chat.
func (d *Dispatcher) handleMintToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UUID     string `json:"uuid"`
		Username string `json:"username"`
		Photo    string `json:"photo"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	name, ok := CleanUsername(body.Username)
	if !ids.Valid(body.UUID) || !ok || !ValidPhoto(body.Photo) {
		writeError(w, http.StatusBadRequest, "bad_player", "uuid, username or photo invalid")
		return
	}
	tok, err := d.signer.Mint(auth.KindPlayer, auth.Claims{Subject: body.UUID, Name: name, Photo: body.Photo}, PlayerTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires": time.Now().Add(PlayerTokenTTL).Unix()})
}

// handleConfig serves GET /v1/config: what a client needs to find the
// other servers.
func (d *Dispatcher) handleConfig(w http.ResponseWriter, r *http.Request) {
	host := d.publicHost(r)
	cfg := map[string]any{
		"room_size":  d.cfg.Match.RoomSize,
		"guest":      d.cfg.GuestLogin,
		"start_map":  d.startMap(),
		"play":       "/v1/play",
		"version":    1,
		"chat":       nil,
		"maps_enter": "/v1/maps/{id}/enter",
	}
	if d.cfg.ChatPort > 0 {
		cfg["chat"] = "ws://" + net.JoinHostPort(host, strconv.Itoa(d.cfg.ChatPort)) + "/ws"
	}
	writeJSON(w, http.StatusOK, cfg)
}

// publicHost is the host put in ws:// URLs for a client: --public-host, or
// the host the client reached us on when processes bind all interfaces.
func (d *Dispatcher) publicHost(r *http.Request) string {
	if d.cfg.PublicHost != "" && d.cfg.PublicHost != "0.0.0.0" && d.cfg.PublicHost != "::" {
		return d.cfg.PublicHost
	}
	if r != nil {
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			return h
		}
		return r.Host
	}
	return "127.0.0.1"
}

func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// ipLimiter is a rate limit per client address, for logins. An address
// unseen for a minute is forgotten (its bucket would be full again).
type ipLimiter struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	addrs map[string]*ipBucket
	swept time.Time
}

type ipBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	return &ipLimiter{limit: rate.Limit(perSecond), burst: burst, addrs: map[string]*ipBucket{}}
}

func (l *ipLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.addrs {
			if now.Sub(b.last) > time.Minute {
				delete(l.addrs, k)
			}
		}
		l.swept = now
	}
	b := l.addrs[key]
	if b == nil {
		b = &ipBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.addrs[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}
