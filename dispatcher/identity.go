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
	"github.com/arena-game/arena/internal/records"
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
	d.mux.HandleFunc("POST /v1/accounts/login", d.minting(d.handleAccountLogin))
	d.mux.HandleFunc("POST /v1/accounts/password", d.handleChangePassword)
	d.mux.HandleFunc("POST /v1/accounts/revoke", d.handleRevokeTokens)
	d.mux.HandleFunc("POST /v1/refresh", d.minting(d.handleRefresh))
	d.mux.HandleFunc("GET /v1/me", d.handleMe)
	d.mux.HandleFunc("POST /v1/tokens", d.backend(d.minting(d.handleMintToken)))
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
	d.writeLogin(w, p, 0)
}

// minting wraps a handler that mints from a checked player token (or
// after reading when the player's tokens are valid from): it runs holding
// tokenMu shared, so a revocation is stored either before its check or
// after its mint.
func (d *Dispatcher) minting(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.tokenMu.RLock()
		defer d.tokenMu.RUnlock()
		h(w, r)
	}
}

// writeLogin answers a login of p with a new player token, issued no
// earlier than validFrom (the second from which p's tokens are accepted,
// playerdb.DB.TokensValidFrom), so it is accepted even when minted within
// the second of a revocation.
func (d *Dispatcher) writeLogin(w http.ResponseWriter, p playerdb.Player, validFrom int64) {
	tok, err := d.signer.MintFrom(auth.KindPlayer, auth.Claims{Subject: p.ID, Name: p.Name, Photo: p.Photo, Bot: p.Bot}, validFrom, PlayerTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "could not mint a token")
		return
	}
	writeJSON(w, http.StatusOK, LoginResponse{UUID: p.ID, Username: p.Name, Photo: p.Photo, Score: p.RatingIn(""), Bot: p.Bot,
		Account: p.Account, Token: tok, Expires: time.Now().Add(PlayerTokenTTL).Unix()})
}

// playerFromRequest verifies the player token in "Authorization: Bearer"
// (or ?token=) and returns its claims, writing a 401 on failure: no_token,
// bad_token, expired_token, or revoked_token for a token issued before the
// player's tokens are valid from (its password was changed or it signed
// out its other devices since). The revocation check reads the database
// (a 503 when it is down).
func (d *Dispatcher) playerFromRequest(w http.ResponseWriter, r *http.Request) (auth.Claims, bool) {
	c, _, ok := d.checkedPlayer(w, r)
	return c, ok
}

// checkedPlayer is playerFromRequest, also returning the second from which
// the player's tokens are valid (0: never revoked, or no record), for a
// handler that mints the player a new token.
func (d *Dispatcher) checkedPlayer(w http.ResponseWriter, r *http.Request) (auth.Claims, int64, bool) {
	tok := bearer(r)
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "no_token", "a player token is required (POST /v1/login)")
		return auth.Claims{}, 0, false
	}
	c, err := d.signer.Verify(auth.KindPlayer, tok)
	if err != nil {
		code := "bad_token"
		if errors.Is(err, auth.ErrExpired) {
			code = "expired_token"
		}
		writeError(w, http.StatusUnauthorized, code, "player token refused: "+code)
		return auth.Claims{}, 0, false
	}
	from, err := d.players.TokensValidFrom(r.Context(), c.Subject)
	switch {
	case errors.Is(err, playerdb.ErrNotFound):
		from = 0 // a backend's player before its first game: nothing revoked
	case err != nil:
		d.playersError(w, "check player token", err)
		return auth.Claims{}, 0, false
	}
	if c.IssuedAt < from {
		writeRevoked(w)
		return auth.Claims{}, 0, false
	}
	return c, from, true
}

// writeRevoked answers a revoked player token: 401 revoked_token.
func writeRevoked(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, "revoked_token",
		"player token revoked: the account's password was changed or it signed out its other devices; sign in again")
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
	c, from, ok := d.checkedPlayer(w, r)
	if !ok {
		return
	}
	if p, ok := d.visit(w, r, c, "refresh"); ok {
		d.writeLogin(w, p, from)
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
	if !d.passwordMatches(w, "account login", id, hash, body.Password) {
		return
	}
	from, err := d.players.TokensValidFrom(r.Context(), id)
	if err != nil {
		d.playersError(w, "account login", err)
		return
	}
	p, err := d.players.Player(r.Context(), id)
	if err != nil {
		d.playersError(w, "account login", err)
		return
	}
	_ = d.players.Seen(r.Context(), id)
	d.writeLogin(w, p, from)
}

// passwordMatches checks pw against the stored hash (argon2id), writing
// 401 bad_credentials when it does not match: the answer, and the time it
// takes, are the same for an account login and a password change.
func (d *Dispatcher) passwordMatches(w http.ResponseWriter, op, id, hash, pw string) bool {
	ok, err := auth.CheckPassword(hash, pw)
	if err != nil {
		d.log.Error(op+": stored hash unreadable", "uuid", id, "err", err)
	}
	if err != nil || !ok {
		writeError(w, http.StatusUnauthorized, "bad_credentials", "wrong account or password")
		return false
	}
	return true
}

// handleChangePassword serves POST /v1/accounts/password
// {"password","new_password"} (player token of a named account): the
// current password is checked as an account login checks it (same limits
// per address and per account, same answer and time for a wrong one), the
// new one as claiming checks it; the new hash is stored and every token of
// the player issued up to now is revoked. The answer is a login's (a
// fresh token), so the caller stays signed in. A guest gets 409
// no_account.
func (d *Dispatcher) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	now := time.Now()
	if !d.loginLimit.allow(clientIP(r), now) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts from this address; wait a little")
		return
	}
	var body struct {
		Password    string `json:"password"`
		NewPassword string `json:"new_password"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	// The new password's bounds first: a refusal costs no hash and no
	// attempt on the account; a wrong current password costs one hash, as
	// a login does.
	if n := len(body.NewPassword); n < auth.MinPasswordLen || n > auth.MaxPasswordLen {
		writeError(w, http.StatusBadRequest, "bad_password", "password must be 8 to 128 bytes")
		return
	}
	account, hash, err := d.players.PlayerCredentials(r.Context(), c.Subject)
	switch {
	case errors.Is(err, playerdb.ErrNoAccount), errors.Is(err, playerdb.ErrNotFound):
		writeError(w, http.StatusConflict, "no_account", "a guest has no password to change; claim an account first (POST /v1/accounts)")
		return
	case err != nil:
		d.playersError(w, "change password", err)
		return
	}
	if !d.accountLimit.allow(account, now) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts on this account; wait a little")
		return
	}
	if !d.passwordMatches(w, "change password", c.Subject, hash, body.Password) {
		return
	}
	newHash, err := auth.HashPassword(body.NewPassword)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_password", "password must be 8 to 128 bytes")
		return
	}
	d.revokeAndLogin(w, r, c, "change password", func() (int64, error) {
		return d.players.ChangePassword(r.Context(), c.Subject, newHash, time.Now())
	})
}

// handleRevokeTokens serves POST /v1/accounts/revoke (player token, guest
// or named): every token of the player issued up to now is revoked (sign
// out everywhere else) and the caller gets a fresh one, as a login does.
// Limited per address and per player as logins are.
func (d *Dispatcher) handleRevokeTokens(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	now := time.Now()
	// "#" keeps the player's key apart from every account name.
	if !d.loginLimit.allow(clientIP(r), now) || !d.accountLimit.allow("#"+c.Subject, now) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts; wait a little")
		return
	}
	if _, err := d.players.Player(r.Context(), c.Subject); errors.Is(err, playerdb.ErrNotFound) {
		// A backend's player: its record is made now, from its token.
		if _, err := d.players.EnsurePlayer(r.Context(), playerdb.NewPlayer{ID: c.Subject, Name: c.Name, Photo: c.Photo, Bot: c.Bot}); err != nil {
			d.playersError(w, "revoke tokens", err)
			return
		}
	}
	d.revokeAndLogin(w, r, c, "revoke tokens", func() (int64, error) {
		return d.players.RevokeTokens(r.Context(), c.Subject, time.Now())
	})
}

// revokeAndLogin runs revoke (which stores when c's player's tokens are
// valid from) holding tokenMu, closes the player's /v1/play socket opened
// with an older token, copies the revocation to the store for the chat
// server, and answers a login with a fresh token.
func (d *Dispatcher) revokeAndLogin(w http.ResponseWriter, r *http.Request, c auth.Claims, op string, revoke func() (int64, error)) {
	d.tokenMu.Lock()
	from, err := revoke()
	if err == nil {
		d.sessions.revoke(c.Subject, from)
	}
	d.tokenMu.Unlock()
	if err != nil {
		d.playersError(w, op, err)
		return
	}
	// The chat server verifies player tokens itself: it reads this copy
	// (best effort; docs/PROTOCOL.md "Revoking tokens").
	if err := records.PutTokensValidFrom(r.Context(), d.store, c.Subject, from, PlayerTokenTTL); err != nil {
		d.log.Warn(op+": revocation not copied to the store; the chat server may accept older tokens", "uuid", c.Subject, "err", err)
	}
	p, err := d.players.Player(r.Context(), c.Subject)
	if err != nil {
		d.playersError(w, op, err)
		return
	}
	d.writeLogin(w, p, from)
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
	// A player that revoked its tokens this second still gets one that
	// is accepted.
	from, err := d.players.TokensValidFrom(r.Context(), body.UUID)
	if err != nil && !errors.Is(err, playerdb.ErrNotFound) {
		d.playersError(w, "mint token", err)
		return
	}
	tok, err := d.signer.MintFrom(auth.KindPlayer, auth.Claims{Subject: body.UUID, Name: name, Photo: body.Photo}, from, BackendTokenTTL)
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
