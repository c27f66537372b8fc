package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/playerdb"
)

// recordRooms applies n two-player results between winner and loser.
func recordRooms(t *testing.T, td *testDispatcher, n int, winner, loser string) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := playerdb.Result{Room: fmt.Sprintf("r%d-%s", i, winner[:4]), Game: "fight", Host: "127.0.0.1:7000", Reason: "last_standing",
			Ended:   time.UnixMilli(int64(1_700_000_000_000 + i*1000)),
			Players: []playerdb.PlayerResult{{UUID: winner, Name: "w", Rank: 1}, {UUID: loser, Name: "l", Rank: 2}}}
		if _, err := td.db.Apply(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func login(t *testing.T, td *testDispatcher, name string) LoginResponse {
	t.Helper()
	var lr LoginResponse
	if code := td.call(t, "POST", "/v1/login", "", map[string]string{"username": name}, &lr); code != 200 {
		t.Fatalf("login %s: %d", name, code)
	}
	return lr
}

func TestPlayerLookups(t *testing.T) {
	td := newTestDispatcher(t, nil)
	ann, bob := login(t, td, "ann"), login(t, td, "bob")
	recordRooms(t, td, 25, ann.UUID, bob.UUID)

	var prof ProfileJSON
	if code := td.call(t, "GET", "/v1/players/"+ann.UUID, "", nil, &prof); code != 200 {
		t.Fatalf("profile: %d", code)
	}
	if prof.Username != "ann" || prof.Games != 25 || prof.Wins != 25 || prof.Score <= 1500 || prof.Ratings["default"].Place != 1 || prof.Named {
		t.Fatalf("profile %+v", prof)
	}
	for _, id := range []string{"no-such-player", "bad id!", strings.Repeat("x", 65)} {
		var e APIError
		if code := td.call(t, "GET", "/v1/players/"+strings.ReplaceAll(id, " ", "%20"), "", nil, &e); code != 404 || e.Code != "unknown_player" {
			t.Errorf("profile of %q: %d %+v", id, code, e)
		}
	}

	// History, paged.
	type page struct {
		Matches []MatchJSON `json:"matches"`
		Next    *string     `json:"next"`
	}
	var p1, p2, p3 page
	if code := td.call(t, "GET", "/v1/players/"+bob.UUID+"/matches?limit=10", "", nil, &p1); code != 200 || len(p1.Matches) != 10 || p1.Next == nil {
		t.Fatalf("page 1: %d %d %v", code, len(p1.Matches), p1.Next)
	}
	td.call(t, "GET", "/v1/players/"+bob.UUID+"/matches?limit=10&after="+*p1.Next, "", nil, &p2)
	td.call(t, "GET", "/v1/players/"+bob.UUID+"/matches?limit=10&after="+*p2.Next, "", nil, &p3)
	if len(p2.Matches) != 10 || len(p3.Matches) != 5 || p3.Next != nil || p1.Matches[0].Ended <= p3.Matches[4].Ended {
		t.Fatalf("pages of %d, %d (next %v)", len(p2.Matches), len(p3.Matches), p3.Next)
	}
	m := p1.Matches[0]
	if len(m.Players) != 2 || m.Players[0].UUID != ann.UUID || m.Players[1].NewScore >= m.Players[1].OldScore {
		t.Fatalf("match %+v", m)
	}
	if code := td.call(t, "GET", "/v1/players/nobody/matches", "", nil, nil); code != 404 {
		t.Fatalf("history of an unknown player: %d", code)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=-5", "limit=x", "after=garbage", "after=12.bad%20room", "after=-1.r"} {
		var e APIError
		if code := td.call(t, "GET", "/v1/players/"+bob.UUID+"/matches?"+q, "", nil, &e); code != 400 || e.Code != "bad_page" {
			t.Errorf("history ?%s: %d %+v", q, code, e)
		}
	}

	// Leaderboard: top N and the caller's own place.
	type board struct {
		Mode    string      `json:"mode"`
		Total   int         `json:"total"`
		Entries []EntryJSON `json:"entries"`
		Me      *EntryJSON  `json:"me"`
	}
	var lb board
	if code := td.call(t, "GET", "/v1/leaderboard?limit=1", bob.Token, nil, &lb); code != 200 {
		t.Fatalf("leaderboard: %d", code)
	}
	if lb.Mode != "default" || lb.Total != 2 || len(lb.Entries) != 1 || lb.Entries[0].UUID != ann.UUID || lb.Me == nil || lb.Me.Place != 2 || lb.Me.UUID != bob.UUID {
		t.Fatalf("leaderboard %+v me %+v", lb, lb.Me)
	}
	var anon board
	if td.call(t, "GET", "/v1/leaderboard", "", nil, &anon); anon.Me != nil || len(anon.Entries) != 2 {
		t.Fatalf("anonymous leaderboard %+v", anon)
	}
	if code := td.call(t, "GET", "/v1/leaderboard", "forged.token", nil, nil); code != 401 {
		t.Fatalf("leaderboard with a bad token: %d", code)
	}
	for _, q := range []string{"limit=0", "limit=500", "offset=-1", "offset=10001", "mode=UPPER", "mode=" + strings.Repeat("m", 33)} {
		if code := td.call(t, "GET", "/v1/leaderboard?"+q, "", nil, nil); code != 400 {
			t.Errorf("leaderboard ?%s: %d", q, code)
		}
	}
}

func TestLoginRefusesOversizedName(t *testing.T) {
	td := newTestDispatcher(t, nil)
	var e APIError
	if code := td.call(t, "POST", "/v1/login", "", map[string]string{"username": strings.Repeat("n", 33)}, &e); code != 400 || e.Code != "bad_username" {
		t.Fatalf("%d %+v", code, e)
	}
	var lb struct{ Total int }
	td.call(t, "GET", "/v1/leaderboard", "", nil, &lb)
	if lb.Total != 0 {
		t.Fatal("a refused login made a player")
	}
}

func TestNamedAccounts(t *testing.T) {
	td := newTestDispatcher(t, nil)
	guest := login(t, td, "guest")
	recordRooms(t, td, 1, guest.UUID, login(t, td, "other").UUID)
	var e APIError
	if code := td.call(t, "POST", "/v1/accounts", "", map[string]string{"account": "alice", "password": "long enough"}, &e); code != 401 {
		t.Fatalf("claim without a token: %d", code)
	}
	for _, c := range []struct{ account, password, code string }{
		{"al", "long enough", "bad_account"}, {"alice", "short", "bad_password"}, {"al ice", "long enough", "bad_account"},
	} {
		if code := td.call(t, "POST", "/v1/accounts", guest.Token, map[string]string{"account": c.account, "password": c.password}, &e); code != 400 || e.Code != c.code {
			t.Errorf("claim %+v: %d %+v", c, code, e)
		}
	}
	if code := td.call(t, "POST", "/v1/accounts", guest.Token, map[string]string{"account": "Alice", "password": "long enough"}, nil); code != 200 {
		t.Fatalf("claim: %d", code)
	}
	if code := td.call(t, "POST", "/v1/accounts", guest.Token, map[string]string{"account": "alice2", "password": "long enough"}, &e); code != 409 || e.Code != "has_account" {
		t.Fatalf("second claim: %d %+v", code, e)
	}
	other := login(t, td, "other2")
	if code := td.call(t, "POST", "/v1/accounts", other.Token, map[string]string{"account": "ALICE", "password": "long enough"}, &e); code != 409 || e.Code != "account_taken" {
		t.Fatalf("taken: %d %+v", code, e)
	}
	// Another browser logs in to the same record.
	var lr LoginResponse
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "alice", "password": "long enough"}, &lr); code != 200 || lr.UUID != guest.UUID || lr.Account != "alice" {
		t.Fatalf("account login: %d %+v", code, lr)
	}
	var me struct {
		UUID    string `json:"uuid"`
		Games   int    `json:"games"`
		Account string `json:"account"`
	}
	if td.call(t, "GET", "/v1/me", lr.Token, nil, &me); me.UUID != guest.UUID || me.Games != 1 || me.Account != "alice" {
		t.Fatalf("me through the account: %+v", me)
	}
	for _, c := range []map[string]string{{"account": "alice", "password": "wrong password"}, {"account": "nobody", "password": "long enough"}, {"account": "x", "password": ""}} {
		if code := td.call(t, "POST", "/v1/accounts/login", "", c, &e); code != 401 || e.Code != "bad_credentials" {
			t.Errorf("login %v: %d %+v", c, code, e)
		}
	}
	// Refresh gives a new token for the same player.
	var rr LoginResponse
	if code := td.call(t, "POST", "/v1/refresh", guest.Token, nil, &rr); code != 200 || rr.UUID != guest.UUID || rr.Token == guest.Token ||
		rr.Expires < time.Now().Add(PlayerTokenTTL-time.Minute).Unix() {
		t.Fatalf("refresh: %d %+v", code, rr)
	}
}

// TestAccountLoginRateLimit: an account's logins are limited whatever
// address they come from; another account is not affected.
func TestAccountLoginRateLimit(t *testing.T) {
	td := newTestDispatcher(t, nil)
	g := login(t, td, "victim")
	if code := td.call(t, "POST", "/v1/accounts", g.Token, map[string]string{"account": "victim", "password": "right password"}, nil); code != 200 {
		t.Fatal(code)
	}
	limited := false
	for i := 0; i < 8 && !limited; i++ {
		td.loginLimit = newIPLimiter(1000, 1000) // other addresses: only the account limit applies
		code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "victim", "password": "wrong guess"}, nil)
		limited = code == 429
	}
	if !limited {
		t.Fatal("8 wrong logins to one account were never limited")
	}
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "victim", "password": "right password"}, nil); code != 429 {
		t.Fatalf("the right password while limited: %d", code)
	}
	if code := td.call(t, "POST", "/v1/accounts/login", "", map[string]string{"account": "someone", "password": "whatever1"}, nil); code != 401 {
		t.Fatalf("another account: %d", code)
	}
}

// TestHealthzFollowsTheDatabase: /healthz answers 503 while the player
// database is closed.
func TestHealthzFollowsTheDatabase(t *testing.T) {
	td := newTestDispatcher(t, nil)
	if code := td.call(t, "GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	td.db.DB.Close()
	if code := td.call(t, "GET", "/healthz", "", nil, nil); code != 503 {
		t.Fatalf("healthz with the database gone: %d", code)
	}
	var e APIError
	if code := td.call(t, "POST", "/v1/login", "", map[string]string{"username": "late"}, &e); code != 503 || e.Code != "database_unavailable" {
		t.Fatalf("login with the database gone: %d %+v", code, e)
	}
}
