package dispatcher

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/playerdb"
)

// PlayerTokenTTL is how long a player token lasts: 30 days from the last
// login or renewal (POST /v1/refresh). A player's record is kept for good
// (history, leaderboards); for a guest the token is its only key, so a
// guest that comes back at least once in 30 days keeps its record, and one
// that claimed an account (POST /v1/accounts) can always log in again.
const PlayerTokenTTL = 30 * 24 * time.Hour

// BackendTokenTTL is how long a token minted for a backend's account
// (POST /v1/tokens) lasts; the backend mints a new one when it expires.
const BackendTokenTTL = 24 * time.Hour

// CleanUsername trims name and checks it: 1 to 32 characters with no
// control or format characters and no '<' or '>' (playerdb.CleanName).
func CleanUsername(name string) (string, bool) { return playerdb.CleanName(name) }

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
	d.mux.HandleFunc("POST /v1/accounts", d.handleClaimAccount)
	d.mux.HandleFunc("POST /v1/accounts/login", d.handleAccountLogin)
	d.mux.HandleFunc("POST /v1/refresh", d.handleRefresh)
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
	Account  string `json:"account,omitempty"` // the login name of a named account
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
	p, err := d.players.EnsurePlayer(r.Context(), playerdb.NewPlayer{ID: auth.NewUUID(), Name: name, Photo: body.Photo, Bot: body.Bot})
	if err != nil {
		d.playersError(w, "login: save player", err)
		return
	}
	d.writeLogin(w, p)
}

// writeLogin answers a login of p with a new player token.
func (d *Dispatcher) writeLogin(w http.ResponseWriter, p playerdb.Player) {
	tok, err := d.signer.Mint(auth.KindPlayer, auth.Claims{Subject: p.ID, Name: p.Name, Photo: p.Photo, Bot: p.Bot}, PlayerTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	writeJSON(w, http.StatusOK, LoginResponse{UUID: p.ID, Username: p.Name, Photo: p.Photo, Score: p.RatingIn(""), Bot: p.Bot,
		Account: p.Account, Token: tok, Expires: time.Now().Add(PlayerTokenTTL).Unix()})
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
	p, ok := d.visit(w, r, c, "me")
	if !ok {
		return
	}
	out := profileJSON(p)
	writeJSON(w, http.StatusOK, struct {
		ProfileJSON
		Account string                  `json:"account,omitempty"`
		Expires int64                   `json:"expires"` // the token's expiry (unix s)
		Queue   matchmaking.QueueStatus `json:"queue"`
	}{out, p.Account, c.Expires, d.mm.Status(r.Context(), c.Subject)})
}

// handleRefresh serves POST /v1/refresh (player token): a new token for
// the same player, lasting PlayerTokenTTL from now. The play page renews
// its token on every visit, so a returning guest never loses its record.
func (d *Dispatcher) handleRefresh(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	if p, ok := d.visit(w, r, c, "refresh"); ok {
		d.writeLogin(w, p)
	}
}

// visit reads the record of the player of c and marks it seen. A player
// with no record yet (a backend's, before its first game) is described by
// its token; a database error is written to w and reported false.
func (d *Dispatcher) visit(w http.ResponseWriter, r *http.Request, c auth.Claims, op string) (playerdb.Player, bool) {
	p, err := d.players.Player(r.Context(), c.Subject)
	switch {
	case errors.Is(err, playerdb.ErrNotFound):
		return playerdb.Player{ID: c.Subject, Name: c.Name, Photo: c.Photo, Bot: c.Bot}, true
	case err != nil:
		d.playersError(w, op, err)
		return p, false
	}
	_ = d.players.Seen(r.Context(), c.Subject)
	return p, true
}

// handleClaimAccount serves POST /v1/accounts {"account","password"}
// (player token): the caller's record gets a login name and password, so
// it can be reached from another browser with POST /v1/accounts/login.
func (d *Dispatcher) handleClaimAccount(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	if !d.loginLimit.allow(clientIP(r), time.Now()) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts from this address; wait a little")
		return
	}
	var body struct {
		Account  string `json:"account"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	account, ok := playerdb.NormAccount(body.Account)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_account", "account must be 3 to 32 of [a-z0-9_.-]")
		return
	}
	hash, err := auth.HashPassword(body.Password)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_password", "password must be 8 to 128 bytes")
		return
	}
	if _, err := d.players.Player(r.Context(), c.Subject); errors.Is(err, playerdb.ErrNotFound) {
		// A backend's player: its record is made now, from its token.
		if _, err := d.players.EnsurePlayer(r.Context(), playerdb.NewPlayer{ID: c.Subject, Name: c.Name, Photo: c.Photo, Bot: c.Bot}); err != nil {
			d.playersError(w, "claim account", err)
			return
		}
	}
	switch err := d.players.ClaimAccount(r.Context(), c.Subject, account, hash); {
	case errors.Is(err, playerdb.ErrAccountTaken):
		writeError(w, http.StatusConflict, "account_taken", "that account name is taken")
	case errors.Is(err, playerdb.ErrHasAccount):
		writeError(w, http.StatusConflict, "has_account", "this player already has an account")
	case err != nil:
		d.playersError(w, "claim account", err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"uuid": c.Subject, "account": account})
	}
}

// handleAccountLogin serves POST /v1/accounts/login {"account","password"}:
// a new player token for the account's record. A wrong password and an
// unknown account get the same answer in the same time (401
// bad_credentials). Attempts are limited per address and per account.
func (d *Dispatcher) handleAccountLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Account  string `json:"account"`
		Password string `json:"password"`
	}
	now := time.Now()
	if !d.loginLimit.allow(clientIP(r), now) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many logins from this address; wait a little")
		return
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	account, ok := playerdb.NormAccount(body.Account)
	if !ok {
		auth.CheckNoPassword(body.Password)
		writeError(w, http.StatusUnauthorized, "bad_credentials", "wrong account or password")
		return
	}
	if !d.accountLimit.allow(account, now) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many logins to this account; wait a little")
		return
	}
	id, hash, err := d.players.AccountCredentials(r.Context(), account)
	if errors.Is(err, playerdb.ErrNotFound) {
		auth.CheckNoPassword(body.Password)
		writeError(w, http.StatusUnauthorized, "bad_credentials", "wrong account or password")
		return
	}
	if err != nil {
		d.playersError(w, "account login", err)
		return
	}
	if ok, err := auth.CheckPassword(hash, body.Password); err != nil || !ok {
		if err != nil {
			d.log.Error("account login: stored hash unreadable", "uuid", id, "err", err)
		}
		writeError(w, http.StatusUnauthorized, "bad_credentials", "wrong account or password")
		return
	}
	p, err := d.players.Player(r.Context(), id)
	if err != nil {
		d.playersError(w, "account login", err)
		return
	}
	_ = d.players.Seen(r.Context(), id)
	d.writeLogin(w, p)
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
	tok, err := d.signer.Mint(auth.KindPlayer, auth.Claims{Subject: body.UUID, Name: name, Photo: body.Photo}, BackendTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires": time.Now().Add(BackendTokenTTL).Unix()})
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
	if chat, ok := d.chatAddr(host); ok {
		cfg["chat"] = "ws://" + chat + "/ws"
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
