package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsconn/wsconntest"
	"github.com/arena-game/arena/proto/matchpb"
	"github.com/arena-game/arena/proto/procpb"
)

const (
	tSecret   = "test-secret"
	tBackend  = "backend-token"
	tOperator = "operator-token"
)

type testDispatcher struct {
	*Dispatcher
	stop func() // stops it (once; cleanup does too)
	sp   *fleettest.Host
	db   *playerdb.Cache
	base string // http://host:port
	ws   string // ws://host:port
}

func newTestDispatcher(t testing.TB, mutate func(*Config)) *testDispatcher {
	t.Helper()
	return newTestDispatcherOn(t, storetest.New(t), mutate)
}

// newTestDispatcherOn runs a test dispatcher on st (two dispatchers one
// after the other on one store: a restart).
func newTestDispatcherOn(t testing.TB, st store.Store, mutate func(*Config)) *testDispatcher {
	t.Helper()
	cfg := Config{
		Listen: "127.0.0.1:0", HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0",
		MaxNum: 10, MinProcesses: 1, HostListen: "none",
		FleetToken: "fleet", Secret: tSecret, BackendToken: tBackend, OperatorToken: tOperator,
		GuestLogin: true, Memcache: []string{"unused"},
		Match:    matchmaking.Config{RoomSize: 3, WindowPerSecond: 50, Tick: 20 * time.Millisecond},
		Fight:    &procpb.FightOptions{RoomTimeout: durationpb.New(10 * time.Minute)},
		Database: "sqlite:unused", OutboxDir: t.TempDir(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	sp := fleettest.NewSpawner()
	if cfg.LocalHost == nil {
		cfg.LocalHost = &host.Config{Name: "local", Advertise: "127.0.0.1", Kinds: fleettest.Kinds(t, 10), Spawner: sp.Spawn,
			StatusEvery: 20 * time.Millisecond, ExitEvery: 10 * time.Millisecond}
	}
	players := playerdb.NewCache(dbtest.Open(t, dbtest.SQLite), st)
	d, err := New(cfg, Deps{Store: st, Players: players}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	select {
	case <-d.Ready():
	case <-time.After(waitfor.Deadline()):
		t.Fatal("dispatcher not ready")
	}
	waitfor.Cond(t, "a ready fight process", func() bool { s := d.fleet.Snapshot(); return len(s) > 0 && s[0].State == hostctl.Ready })
	_, h := d.Addrs()
	return &testDispatcher{Dispatcher: d, sp: sp, db: players, base: "http://" + h, ws: "ws://" + h, stop: stop}
}

func (td *testDispatcher) call(t *testing.T, method, path, bearer string, body any, out any) int {
	t.Helper()
	var rd io.Reader = http.NoBody
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, td.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (td *testDispatcher) login(t *testing.T, name string) LoginResponse {
	t.Helper()
	var lr LoginResponse
	if code := td.call(t, "POST", "/v1/login", "", map[string]string{"username": name}, &lr); code != 200 {
		t.Fatalf("login %s: %d", name, code)
	}
	return lr
}

func (td *testDispatcher) play(t *testing.T, token string) *wsconn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	cl, err := wsconn.DialClient(ctx, td.ws+"/v1/play?token="+token, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	if err := cl.RecvType(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	return cl
}

func recvErrCode(t *testing.T, cl *wsconn.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	var e struct{ Code string }
	if err := cl.RecvType(ctx, "error", &e); err != nil {
		t.Fatal(err)
	}
	return e.Code
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	t.Cleanup(cancel)
	return ctx
}

func TestPlayRefusesBadTokens(t *testing.T) {
	td := newTestDispatcher(t, nil)
	signer, _ := auth.NewSigner(tSecret)
	other, _ := auth.NewSigner("another-secret")
	expired, _ := signer.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }).Mint(auth.KindPlayer, auth.Claims{Subject: "u1", Name: "a"}, time.Hour)
	forged, _ := other.Mint(auth.KindPlayer, auth.Claims{Subject: "u1", Name: "a"}, time.Hour)
	roomTok, _ := signer.Mint(auth.KindRoom, auth.Claims{Subject: "u1", Room: "r1"}, time.Hour)
	for name, tc := range map[string]struct{ query, code string }{
		"none":      {"", "no_token"},
		"garbage":   {"?token=abc", "bad_token"},
		"forged":    {"?token=" + forged, "bad_token"},
		"expired":   {"?token=" + expired, "expired_token"},
		"room kind": {"?token=" + roomTok, "bad_token"},
	} {
		resp, err := http.Get(td.base + "/v1/play" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var e APIError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || e.Code != tc.code {
			t.Errorf("%s: %d %+v, want 401 %s", name, resp.StatusCode, e, tc.code)
		}
	}
}

func TestQueueMatchAndBadMessages(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.Tick = time.Hour })
	ctx := tctx(t)
	a := td.login(t, "alice")
	cl := td.play(t, a.Token)

	_ = cl.Send([]byte(`{not json`))
	if code := recvErrCode(t, cl); code != "bad_json" {
		t.Fatalf("malformed json: %s", code)
	}
	_ = cl.Send([]byte(`{"type":"dance"}`))
	if code := recvErrCode(t, cl); code != "unknown_type" {
		t.Fatalf("unknown type: %s", code)
	}
	_ = cl.Send([]byte(`{"type":"cancel"}`))
	if code := recvErrCode(t, cl); code != "not_queued" {
		t.Fatalf("cancel unqueued: %s", code)
	}
	_ = cl.Send([]byte(`{"type":"queue","mode":"Bad Mode!"}`))
	if code := recvErrCode(t, cl); code != "unknown_profile" {
		t.Fatalf("bad mode: %s", code)
	}
	_ = cl.Send([]byte(`{"type":"queue","profile":"nosuch"}`))
	if code := recvErrCode(t, cl); code != "unknown_profile" {
		t.Fatalf("unknown profile: %s", code)
	}
	_ = cl.Send([]byte(`{"type":"queue","search_fields":{"doubles":{"level":3}}}`))
	if code := recvErrCode(t, cl); code != "field_not_allowed" {
		t.Fatalf("a field the default profile keeps for backends: %s", code)
	}
	_ = cl.SendJSON(map[string]any{"type": "queue", "score": 99999})
	var q struct{ Score int }
	if err := cl.RecvType(ctx, "queued", &q); err != nil {
		t.Fatal(err)
	}
	if q.Score != 1500 {
		t.Fatalf("queued with score %d; the rating comes from the record (1500), never the client", q.Score)
	}
	// Queueing twice: an error, and the player stays queued once.
	_ = cl.SendJSON(map[string]any{"type": "queue"})
	if code := recvErrCode(t, cl); code != "already_queued" {
		t.Fatalf("queue twice: %s", code)
	}
	if st := td.mm.Status(ctx, a.UUID); st.State != matchmaking.StateQueued {
		t.Fatalf("state after double queue = %+v", st)
	}
	if s := td.mm.Stats(); s.Queues["default"] != 1 {
		t.Fatalf("pool holds %d players, want 1", s.Queues["default"])
	}
	_ = cl.SendJSON(map[string]any{"type": "cancel"})
	if err := cl.RecvType(ctx, "cancelled", nil); err != nil {
		t.Fatal(err)
	}
	// Oversized frames close the socket.
	_ = cl.Send([]byte(`{"type":"queue","pad":"` + strings.Repeat("x", 8<<10) + `"}`))
	select {
	case <-cl.Done():
		if c := wsconn.CloseCode(cl.CloseErr()); c != wsconn.CloseTooBig {
			t.Fatalf("close code %d", c)
		}
	case <-ctx.Done():
		t.Fatal("oversized frame did not close the socket")
	}
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	td := newTestDispatcher(t, nil)
	cl := td.play(t, td.login(t, "flood").Token)
	for i := 0; i < 200; i++ {
		if cl.Send([]byte(`{"type":"ping"}`)) != nil {
			break
		}
	}
	ctx := tctx(t)
	limited := false
	for {
		b, err := cl.Recv(ctx)
		if err != nil {
			break
		}
		if bytes.Contains(b, []byte("rate_limited")) {
			limited = true
		}
	}
	if !limited || wsconn.CloseCode(cl.CloseErr()) != wsconn.ClosePolicy {
		t.Fatalf("limited=%v close=%v", limited, cl.CloseErr())
	}
}

func TestClosingSocketLeavesQueue(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.Tick = time.Hour })
	ctx := tctx(t)
	a := td.login(t, "leaver")
	cl := td.play(t, a.Token)
	_ = cl.SendJSON(map[string]any{"type": "queue"})
	if err := cl.RecvType(ctx, "queued", nil); err != nil {
		t.Fatal(err)
	}
	cl.Close(wsconn.CloseNormal, "bye")
	waitfor.Cond(t, "a's queue state back to none", func() bool { return td.mm.Status(ctx, a.UUID).State == matchmaking.StateNone })
}

type matchOut struct {
	Room    string
	Fight   string
	Ticket  string
	Players []matchmaking.Player
}

func TestThreePlayersMatchWithRoomTokens(t *testing.T) {
	td := newTestDispatcher(t, nil)
	ctx := tctx(t)
	var cls []*wsconn.Client
	var ids []string
	for i := 0; i < 3; i++ {
		lr := td.login(t, fmt.Sprintf("p%d", i))
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue"})
		cls, ids = append(cls, cl), append(ids, lr.UUID)
	}
	var room string
	for i, cl := range cls {
		var m matchOut
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		if room == "" {
			room = m.Room
		}
		c, err := td.signer.Verify(auth.KindRoom, m.Ticket)
		if err != nil || c.Subject != ids[i] || c.Room != room || m.Room != room || len(m.Players) != 3 || !strings.HasPrefix(m.Fight, "ws://") {
			t.Fatalf("match %+v claims %+v %v", m, c, err)
		}
	}
	// In a room: queueing again is refused with in_room.
	_ = cls[0].SendJSON(map[string]any{"type": "queue"})
	if code := recvErrCode(t, cls[0]); code != "in_room" {
		t.Fatalf("queue while in a room: %s", code)
	}
	// The fight server tells its host the room ended: the players are free.
	td.sp.Proc(0).EndRoom(room)
	waitfor.Cond(t, "the first player's queue state back to none", func() bool { return td.mm.Status(ctx, ids[0]).State == matchmaking.StateNone })
}

func TestPartyQueuesAsOneUnit(t *testing.T) {
	td := newTestDispatcher(t, nil)
	ctx := tctx(t)
	a, b, c := td.login(t, "a"), td.login(t, "b"), td.login(t, "c")
	ca, cb, cc := td.play(t, a.Token), td.play(t, b.Token), td.play(t, c.Token)
	_ = ca.SendJSON(map[string]any{"type": "queue", "party": []string{b.UUID}})
	var pend struct {
		PartyPending []string `json:"party_pending"`
	}
	if err := ca.RecvType(ctx, "party", &pend); err != nil || len(pend.PartyPending) != 1 || pend.PartyPending[0] != b.UUID {
		t.Fatalf("party pending: %+v %v", pend, err)
	}
	_ = cc.SendJSON(map[string]any{"type": "queue"})
	if err := cc.RecvType(ctx, "queued", nil); err != nil {
		t.Fatal(err)
	}
	// c is in the pool; a, whose party is not complete, is not.
	if n := td.mm.Stats().Queues["default"]; n != 1 {
		t.Fatalf("%d players in the pool, want 1 (c)", n)
	}
	if st := td.mm.Status(ctx, a.UUID); st.State != matchmaking.StatePartyPending {
		t.Fatalf("a = %+v", st)
	}
	_ = cb.SendJSON(map[string]any{"type": "queue", "party": []string{a.UUID, b.UUID}})
	for _, cl := range []*wsconn.Client{ca, cb, cc} {
		var m matchOut
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Players) != 3 {
			t.Fatalf("match %+v", m)
		}
	}
	// A party larger than a room is refused.
	d := td.login(t, "d")
	cd := td.play(t, d.Token)
	_ = cd.SendJSON(map[string]any{"type": "queue", "party": []string{"x1", "x2", "x3"}})
	if code := recvErrCode(t, cd); code != "party_too_large" {
		t.Fatalf("big party: %s", code)
	}
}

func TestFightServerDiesMidRoom(t *testing.T) {
	td := newTestDispatcher(t, nil)
	ctx := tctx(t)
	var cls []*wsconn.Client
	var ids []string
	for i := 0; i < 3; i++ {
		lr := td.login(t, fmt.Sprintf("d%d", i))
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue"})
		cls, ids = append(cls, cl), append(ids, lr.UUID)
	}
	var m matchOut
	for _, cl := range cls {
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
	}
	// Kill the fight process that hosts the room.
	for _, p := range td.sp.Procs() {
		if len(p.Rooms()) > 0 {
			p.Exit()
		}
	}
	for _, cl := range cls {
		var e struct{ Code, Room, Message string }
		if err := cl.RecvType(ctx, "error", &e); err != nil {
			t.Fatal(err)
		}
		if e.Code != "room_failed" || e.Room != m.Room || !strings.Contains(e.Message, m.Room) {
			t.Fatalf("got %+v, want room_failed naming %s", e, m.Room)
		}
	}
	for _, id := range ids {
		if st := td.mm.Status(ctx, id); st.State != matchmaking.StateNone {
			t.Fatalf("player stuck: %+v", st)
		}
	}
	// They can queue again at once.
	_ = cls[0].SendJSON(map[string]any{"type": "queue"})
	if err := cls[0].RecvType(ctx, "queued", nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoginValidation(t *testing.T) {
	td := newTestDispatcher(t, nil)
	for name, tc := range map[string]struct {
		bearer string
		body   any
		status int
		code   string
	}{
		"empty name":     {"", map[string]string{"username": "  "}, 400, "bad_username"},
		"long name":      {"", map[string]string{"username": strings.Repeat("n", 33)}, 400, "bad_username"},
		"control char":   {"", map[string]string{"username": "a\x00b"}, 400, "bad_username"},
		"bidi override":  {"", map[string]string{"username": "a\u202eb"}, 400, "bad_username"},
		"line separator": {"", map[string]string{"username": "a\u2028b"}, 400, "bad_username"},
		"bad photo":      {"", map[string]string{"username": "a", "photo": "javascript:alert(1)"}, 400, "bad_photo"},
		"bot no op":      {"", map[string]any{"username": "a", "bot": true}, 403, "forbidden"},
		"not json":       {"", "{{{", 400, "bad_request"},
		"huge body":      {"", `{"username":"` + strings.Repeat("a", 20000) + `"}`, 400, "bad_request"},
	} {
		var e APIError
		if code := td.call(t, "POST", "/v1/login", tc.bearer, tc.body, &e); code != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %+v", name, code, e)
		}
	}
	var bot LoginResponse
	if code := td.call(t, "POST", "/v1/login", tOperator, map[string]any{"username": "bot-1", "bot": true}, &bot); code != 200 || !bot.Bot {
		t.Fatalf("operator bot login: %d %+v", code, bot)
	}
	td2 := newTestDispatcher(t, func(c *Config) { c.GuestLogin = false })
	var e APIError
	if code := td2.call(t, "POST", "/v1/login", "", map[string]string{"username": "a"}, &e); code != 403 || e.Code != "guest_login_disabled" {
		t.Fatalf("guest login off: %d %+v", code, e)
	}
}

func TestTicketsAPI(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.Tick = time.Hour })
	ok := map[string]any{"score": 1500, "uuid": "acct-1", "username": "one", "channel_name": "c1"}
	if code := td.call(t, "POST", "/v1/tickets", "", ok, nil); code != 401 {
		t.Fatalf("no backend token: %d", code)
	}
	if code := td.call(t, "POST", "/v1/tickets", "wrong", ok, nil); code != 401 {
		t.Fatalf("wrong backend token: %d", code)
	}
	for name, body := range map[string]map[string]any{
		"negative score": {"score": -1, "uuid": "a", "username": "x"},
		"absurd score":   {"score": 1 << 30, "uuid": "a", "username": "x"},
		"bad uuid":       {"score": 1, "uuid": "a b", "username": "x"},
		"no name":        {"score": 1, "uuid": "a", "username": ""},
	} {
		var e APIError
		if code := td.call(t, "POST", "/v1/tickets", tBackend, body, &e); code != 400 || e.Code != "bad_ticket" {
			t.Errorf("%s: %d %+v", name, code, e)
		}
	}
	for name, tc := range map[string]struct {
		body map[string]any
		code string
	}{
		"unknown profile": {map[string]any{"score": 1, "uuid": "a", "username": "x", "profile": "UP"}, "unknown_profile"},
		"old mode name":   {map[string]any{"score": 1, "uuid": "a", "username": "x", "mode": "nosuch"}, "unknown_profile"},
		"too many tags":   {map[string]any{"score": 1, "uuid": "a", "username": "x", "search_fields": map[string]any{"tags": strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ",")}}, "bad_search_fields"},
		"huge string":     {map[string]any{"score": 1, "uuid": "a", "username": "x", "search_fields": map[string]any{"strings": map[string]string{"region": strings.Repeat("e", 300)}}}, "bad_search_fields"},
	} {
		var e APIError
		if code := td.call(t, "POST", "/v1/tickets", tBackend, tc.body, &e); code != 400 || e.Code != tc.code {
			t.Errorf("%s: %d %+v, want 400 %s", name, code, e, tc.code)
		}
	}
	// NaN cannot be written in JSON; a number too large for a double is
	// refused by the decoder.
	var e APIError
	if code := td.call(t, "POST", "/v1/tickets", tBackend, `{"score":1,"uuid":"a","username":"x","search_fields":{"doubles":{"level":1e400}}}`, &e); code != 400 {
		t.Errorf("infinite double: %d %+v", code, e)
	}
	if code := td.call(t, "POST", "/v1/tickets", tBackend, ok, nil); code != 202 {
		t.Fatalf("add: %d", code)
	}
	if code := td.call(t, "POST", "/v1/tickets", tBackend, ok, nil); code != 409 {
		t.Fatalf("add twice: %d", code)
	}
	var ts TicketStatus
	if code := td.call(t, "GET", "/v1/tickets/acct-1", tBackend, nil, &ts); code != 200 || ts.Queue.State != matchmaking.StateQueued {
		t.Fatalf("get: %d %+v", code, ts)
	}
	if code := td.call(t, "GET", "/v1/tickets/nobody", tBackend, nil, nil); code != 404 {
		t.Fatalf("get unknown: %d", code)
	}
	if code := td.call(t, "DELETE", "/v1/tickets/acct-1", tBackend, nil, nil); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
}

func TestGRPCMatchService(t *testing.T) {
	td := newTestDispatcher(t, nil)
	conn, err := grpc.NewClient(td.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := matchpb.NewMatchClient(conn)
	ctx := tctx(t)
	if _, err := c.AddPlayer(ctx, &matchpb.AddPlayerRequest{Score: 1500, Uuid: "g1", Username: "g"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tBackend)
	if _, err := c.AddPlayer(authed, &matchpb.AddPlayerRequest{Score: -5, Uuid: "g1", Username: "g"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad score: %v", err)
	}
	stream, err := c.Assignments(authed, &matchpb.AssignmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	td.waitSubscribers(t, 1)
	for i, s := range []int32{1500, 1500, 1500} {
		if _, err := c.AddPlayer(authed, &matchpb.AddPlayerRequest{Score: s, Uuid: fmt.Sprintf("g%d", i), Username: "g", ChannelName: fmt.Sprintf("ch%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddPlayer(authed, &matchpb.AddPlayerRequest{Score: 1500, Uuid: "g0", Username: "g"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate: %v", err)
	}
	rooms := map[string]bool{}
	for i := 0; i < 3; i++ {
		a, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a.GetTicket() == "" || len(a.GetPlayers()) != 3 || a.GetChannelName() == "" {
			t.Fatalf("assignment %+v", a)
		}
		rooms[a.GetRoom()] = true
	}
	if len(rooms) != 1 {
		t.Fatalf("rooms %v", rooms)
	}
}

// TestPlayPingsCountAgainstTheRateLimit: WebSocket pings on /v1/play spend
// the socket's message budget (burst 20), and a ping flood closes it with
// 1008.
func TestPlayPingsCountAgainstTheRateLimit(t *testing.T) {
	td := newTestDispatcher(t, nil)
	a := td.login(t, "pinger")
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	res, err := wsconntest.PingFlood(ctx, td.ws+"/v1/play?token="+a.Token, nil, 20000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Pongs > playBurst+5 || !res.Closed || res.CloseCode != wsconn.ClosePolicy {
		t.Fatalf("ping flood: %+v; want at most the burst answered, then a 1008 close", res)
	}
	// A burst of pings spends the budget of messages: the status after
	// them is refused.
	res, err = wsconntest.PingFlood(ctx, td.ws+"/v1/play?token="+a.Token, nil, playBurst, time.Second, `{"type":"status"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Texts, func(s string) bool { return strings.Contains(s, `"rate_limited"`) }) {
		t.Fatalf("a status after %d pings: %+v; want rate_limited", playBurst, res)
	}
}

// TestStopClosesPlaySocketsWithRestartCode: a stopping dispatcher (SIGTERM)
// says goodbye on /v1/play: a "restarting" error, then a close frame with
// 1012 (Service Restart), which the play page answers by reconnecting and
// queueing again. It used to be a bare EOF.
func TestStopClosesPlaySocketsWithRestartCode(t *testing.T) {
	td := newTestDispatcher(t, nil)
	cls := []*wsconn.Client{td.play(t, td.login(t, "a").Token), td.play(t, td.login(t, "b").Token)}
	_ = cls[0].SendJSON(map[string]any{"type": "queue"})
	if err := cls[0].RecvType(tctx(t), "queued", nil); err != nil {
		t.Fatal(err)
	}
	td.stop()
	for i, cl := range cls {
		if err := cl.RecvType(tctx(t), "never", nil); !strings.Contains(fmt.Sprint(err), "restarting") {
			t.Fatalf("socket %d: %v, want a restarting error first", i, err)
		}
		waitfor.Closed(t, cl.Done(), "the socket's close")
		if code := wsconn.CloseCode(cl.CloseErr()); code != wsconn.CloseServiceRestart {
			t.Fatalf("socket %d closed with %d (%v), want %d", i, code, cl.CloseErr(), wsconn.CloseServiceRestart)
		}
	}
}
