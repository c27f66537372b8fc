package dispatcher

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/records"
)

// playStatus is the HTTP answer of /v1/play to token before any upgrade
// (a refused token never gets one).
func playStatus(t *testing.T, td *testDispatcher, token string) (int, APIError) {
	t.Helper()
	resp, err := http.Get(td.base + "/v1/play?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e APIError
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e
}

// assertRevoked checks that token is refused with 401 revoked_token at
// /v1/refresh, /v1/me, /v1/play and the account endpoints.
func assertRevoked(t *testing.T, td *testDispatcher, who, token string) {
	t.Helper()
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/refresh"}, {"GET", "/v1/me"}, {"POST", "/v1/accounts/revoke"}, {"GET", "/v1/maps/start/enter"},
	} {
		var e APIError
		if code := td.call(t, c.method, c.path, token, nil, &e); code != 401 || e.Code != "revoked_token" {
			t.Errorf("%s at %s %s: %d %+v, want 401 revoked_token", who, c.method, c.path, code, e)
		}
	}
	var e APIError
	if code := td.call(t, "POST", "/v1/accounts/password", token, map[string]string{"password": "x", "new_password": "yyyyyyyy"}, &e); code != 401 || e.Code != "revoked_token" {
		t.Errorf("%s at /v1/accounts/password: %d %+v", who, code, e)
	}
	if code, e := playStatus(t, td, token); code != 401 || e.Code != "revoked_token" {
		t.Errorf("%s at /v1/play: %d %+v, want 401 revoked_token", who, code, e)
	}
}

// assertWorks checks that token is accepted at /v1/me as uuid's.
func assertWorks(t *testing.T, td *testDispatcher, who, token, uuid string) {
	t.Helper()
	var me struct{ UUID string }
	if code := td.call(t, "GET", "/v1/me", token, nil, &me); code != 200 || me.UUID != uuid {
		t.Fatalf("%s at /v1/me: %d %+v", who, code, me)
	}
}

// TestChangePassword: a named account changes its password with its
// current one; every older token of the player (this browser's and
// another's) is refused at /v1/refresh, /v1/me and /v1/play, the other
// browser's open /v1/play socket is closed with revoked_token, and the
// fresh token (and a refresh of it within the same second) works. The
// old password no longer logs in, the new one does. A wrong current
// password, a short new one and a guest are refused.
func TestChangePassword(t *testing.T) {
	td := newTestDispatcher(t, nil)
	a := login(t, td, "carol")
	if code := td.call(t, "POST", "/v1/accounts", a.Token, map[string]string{"account": "carol", "password": "first password"}, nil); code != 200 {
		t.Fatalf("claim: %d", code)
	}
	var b LoginResponse // another browser
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "carol", "password": "first password"}, &b); code != 200 {
		t.Fatalf("account login: %d", code)
	}
	other := td.play(t, b.Token)

	change := func(token, current, next string) (int, APIError, LoginResponse) {
		var raw json.RawMessage
		code := td.call(t, "POST", "/v1/accounts/password", token, map[string]string{"password": current, "new_password": next}, &raw)
		var e APIError
		var lr LoginResponse
		_ = json.Unmarshal(raw, &e)
		_ = json.Unmarshal(raw, &lr)
		return code, e, lr
	}
	for _, c := range []struct {
		name, token, current, next string
		status                     int
		code                       string
	}{
		{"no token", "", "first password", "second password", 401, "no_token"},
		{"wrong current password", a.Token, "not my password", "second password", 401, "bad_credentials"},
		{"short new password", a.Token, "first password", "short", 400, "bad_password"},
		{"long new password", a.Token, "first password", string(make([]byte, 129)), 400, "bad_password"},
		{"guest", login(t, td, "guest").Token, "first password", "second password", 409, "no_account"},
	} {
		if status, e, _ := change(c.token, c.current, c.next); status != c.status || e.Code != c.code {
			t.Errorf("%s: %d %+v, want %d %s", c.name, status, e, c.status, c.code)
		}
	}
	// The refusals changed nothing.
	assertWorks(t, td, "a before the change", a.Token, a.UUID)

	status, e, fresh := change(a.Token, "first password", "second password")
	if status != 200 || fresh.UUID != a.UUID || fresh.Account != "carol" || fresh.Token == "" {
		t.Fatalf("change: %d %+v %+v", status, e, fresh)
	}
	if code := recvErrCode(t, other); code != "revoked_token" {
		t.Fatalf("the other browser's socket heard %q, want revoked_token", code)
	}
	assertRevoked(t, td, "this browser's old token", a.Token)
	assertRevoked(t, td, "the other browser's token", b.Token)

	assertWorks(t, td, "the fresh token", fresh.Token, a.UUID)
	var again LoginResponse
	if code := td.call(t, "POST", "/v1/refresh", fresh.Token, nil, &again); code != 200 {
		t.Fatalf("refresh of the fresh token: %d", code)
	}
	assertWorks(t, td, "a refresh of the fresh token", again.Token, a.UUID)
	td.play(t, fresh.Token)

	var lr LoginResponse
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "carol", "password": "first password"}, &e); code != 401 || e.Code != "bad_credentials" {
		t.Fatalf("login with the old password: %d %+v", code, e)
	}
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "carol", "password": "second password"}, &lr); code != 200 || lr.UUID != a.UUID {
		t.Fatalf("login with the new password: %d %+v", code, lr)
	}
	assertWorks(t, td, "a login with the new password", lr.Token, a.UUID)
}

// TestChangePasswordAccountLimit: wrong current passwords count against
// the account's login limit, shared with account logins: once it is
// reached, even the right password is refused with 429, and so is a login.
func TestChangePasswordAccountLimit(t *testing.T) {
	td := newTestDispatcher(t, nil)
	g := login(t, td, "dave")
	if code := td.call(t, "POST", "/v1/accounts", g.Token, map[string]string{"account": "dave", "password": "right password"}, nil); code != 200 {
		t.Fatal(code)
	}
	limited := false
	for i := 0; i < 8 && !limited; i++ {
		td.loginLimit = newIPLimiter(1000, 1000) // other addresses: only the account limit applies
		var e APIError
		code := td.call(t, "POST", "/v1/accounts/password", g.Token, map[string]string{"password": "wrong guess", "new_password": "new password"}, &e)
		if code != 429 && (code != 401 || e.Code != "bad_credentials") {
			t.Fatalf("wrong guess %d: %d %+v", i, code, e)
		}
		limited = code == 429
	}
	if !limited {
		t.Fatal("8 wrong current passwords were never limited")
	}
	if code := td.call(t, "POST", "/v1/accounts/password", g.Token, map[string]string{"password": "right password", "new_password": "new password"}, nil); code != 429 {
		t.Fatalf("the right password while limited: %d", code)
	}
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "dave", "password": "right password"}, nil); code != 429 {
		t.Fatalf("an account login while limited: %d", code)
	}
	assertWorks(t, td, "the token after the refused changes", g.Token, g.UUID)
}

// TestRevokeOtherDevices: a guest signs out everywhere else: its other
// tokens (and the one it called with) are refused, its open /v1/play
// socket is closed, and the fresh token works. A second revocation within
// the same second refuses the first one's fresh token. A backend's
// player with no record yet can revoke too.
func TestRevokeOtherDevices(t *testing.T) {
	td := newTestDispatcher(t, nil)
	g := login(t, td, "erin")
	var elsewhere LoginResponse
	if code := td.call(t, "POST", "/v1/refresh", g.Token, nil, &elsewhere); code != 200 {
		t.Fatal(code)
	}
	sock := td.play(t, elsewhere.Token)
	if code := td.call(t, "POST", "/v1/accounts/revoke", "", nil, nil); code != 401 {
		t.Fatalf("revoke without a token: %d", code)
	}
	var fresh LoginResponse
	if code := td.call(t, "POST", "/v1/accounts/revoke", g.Token, nil, &fresh); code != 200 || fresh.UUID != g.UUID || fresh.Account != "" {
		t.Fatalf("revoke: %d %+v", code, fresh)
	}
	if code := recvErrCode(t, sock); code != "revoked_token" {
		t.Fatalf("the socket heard %q, want revoked_token", code)
	}
	assertRevoked(t, td, "the caller's old token", g.Token)
	assertRevoked(t, td, "the other token", elsewhere.Token)
	assertWorks(t, td, "the fresh token", fresh.Token, g.UUID)
	// The chat server's copy of the revocation: the fresh token's second.
	signer, _ := auth.NewSigner(tSecret)
	fc, _ := signer.Verify(auth.KindPlayer, fresh.Token)
	if from, err := records.TokensValidFrom(tctx(t), td.store, g.UUID); err != nil || from != fc.IssuedAt || from == 0 {
		t.Fatalf("the store's copy: %d, %v; want %d", from, err, fc.IssuedAt)
	}

	var second LoginResponse
	if code := td.call(t, "POST", "/v1/accounts/revoke", fresh.Token, nil, &second); code != 200 {
		t.Fatalf("second revoke: %d", code)
	}
	assertRevoked(t, td, "the first revocation's fresh token", fresh.Token)
	assertWorks(t, td, "the second revocation's fresh token", second.Token, g.UUID)

	var minted struct{ Token string }
	if code := td.call(t, "POST", "/v1/tokens", tBackend, map[string]string{"uuid": "backend-player-1", "username": "bp"}, &minted); code != 200 {
		t.Fatalf("backend token: %d", code)
	}
	var bp LoginResponse
	if code := td.call(t, "POST", "/v1/accounts/revoke", minted.Token, nil, &bp); code != 200 || bp.UUID != "backend-player-1" {
		t.Fatalf("a backend's player revokes: %d %+v", code, bp)
	}
	assertRevoked(t, td, "the backend-minted token", minted.Token)
	// The backend mints again within the revocation's second: accepted.
	if code := td.call(t, "POST", "/v1/tokens", tBackend, map[string]string{"uuid": "backend-player-1", "username": "bp"}, &minted); code != 200 {
		t.Fatalf("backend token after the revocation: %d", code)
	}
	assertWorks(t, td, "a backend token minted after the revocation", minted.Token, "backend-player-1")
}

// TestRevocationNotHiddenByCache: a revocation stored behind the record
// cache's back (as when its invalidation is lost) is seen by the next
// request, while the cache still serves a stale record of the player.
func TestRevocationNotHiddenByCache(t *testing.T) {
	td := newTestDispatcher(t, nil)
	g := login(t, td, "frank")
	assertWorks(t, td, "before", g.Token, g.UUID) // the record is in memcached now
	// Behind the cache: an account and a revocation only the database knows.
	if err := td.db.DB.ClaimAccount(tctx(t), g.UUID, "frank", "not-a-real-hash"); err != nil {
		t.Fatal(err)
	}
	if _, err := td.db.DB.RevokeTokens(tctx(t), g.UUID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, err := td.db.Player(tctx(t), g.UUID); err != nil || p.Account != "" {
		t.Fatalf("the cache does not hold the stale record (account %q, %v): the test proves nothing", p.Account, err)
	}
	assertRevoked(t, td, "a token revoked behind the cache", g.Token)
}

// TestSocketCheckedBeforeARevocation: a /v1/play socket whose token passed
// its check before a revocation but opens after it is refused; one with
// a token issued from the revocation's second on is not.
func TestSocketCheckedBeforeARevocation(t *testing.T) {
	s := newSessions()
	s.revoke("u1", 100)
	if _, revoked := s.add(&playSession{claims: auth.Claims{Subject: "u1", IssuedAt: 99}}); !revoked {
		t.Fatal("a socket with a token issued before the revocation was added")
	}
	if _, revoked := s.add(&playSession{claims: auth.Claims{Subject: "u1", IssuedAt: 100}}); revoked {
		t.Fatal("a socket with the fresh token was refused")
	}
	if _, revoked := s.add(&playSession{claims: auth.Claims{Subject: "u2", IssuedAt: 1}}); revoked {
		t.Fatal("another player's socket was refused")
	}
}
