package chatserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsconn/wsconntest"
)

func TestWelcomeAndAutoJoin(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dialRaw("u1", "")
	w := c.expect("welcome", nil)
	if w.str("uuid") != "u1" || w.str("username") != "name-u1" || w["operator"] != false {
		t.Fatalf("welcome %v", w)
	}
	j := c.expect("joined", func(m msg) bool { return m.str("channel") == "world" })
	if n, _ := j["online"].(float64); n != 1 {
		t.Fatalf("joined world online %v, want 1", j["online"])
	}
	c2 := e.dialRaw("u2", "")
	c2.expect("welcome", nil)
	c2.expectJoined("world", "announce")
}

func TestRefusedTokens(t *testing.T) {
	e := newEnv(t, Config{})
	forger, _ := auth.NewSigner("another-secret")
	forged, _ := forger.Mint(auth.KindPlayer, auth.Claims{Subject: "u1", Name: "x"}, time.Hour)
	expired, _ := e.signer.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }).
		Mint(auth.KindPlayer, auth.Claims{Subject: "u1"}, time.Hour)
	room := e.roomToken("u1", "r1")
	good := e.playerToken("u1", "x")
	cases := map[string]string{
		"missing":        "",
		"forged":         "?token=" + forged,
		"garbage":        "?token=not.a-token",
		"expired":        "?token=" + expired,
		"wrong kind":     "?token=" + room,
		"wrong operator": "?token=" + good + "&operator=guess",
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := waitCtx()
			defer cancel()
			_, err := wsconn.DialClient(ctx, e.url+q, 0)
			if err == nil || !strings.Contains(err.Error(), "http 401") {
				t.Fatalf("dial: %v, want an HTTP 401 refusal", err)
			}
			resp, err := http.Get("http://" + e.addr + "/ws" + q)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthorized"`) {
				t.Fatalf("GET: %d %s", resp.StatusCode, body)
			}
		})
	}
	if e.srv.Connections() != 0 {
		t.Fatalf("%d connections after refusals", e.srv.Connections())
	}
}

func TestWorldFanOutAndSpoofedSender(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	b := e.dial("bob", "")
	a.sendJSON(map[string]any{
		"type": "post", "channel": "world", "text": "hello", "ref": "r1",
		// Spoofed sender fields: all ignored.
		"from": map[string]any{"uuid": "bob", "username": "bob"}, "uuid": "bob", "username": "bob", "id": "forged",
	})
	check := func(c *tclient, m msg) {
		if m.from() != "alice" || m["from"].(map[string]any)["username"] != "name-alice" || m.str("text") != "hello" || m.str("id") == "forged" {
			t.Fatalf("%s got %v", c.uuid, m)
		}
	}
	check(b, b.expect("message", func(m msg) bool { return m.str("channel") == "world" }))
	// The ack and the sender's own copy may come in either order.
	var ack, own msg
	ctx, cancel := waitCtx()
	defer cancel()
	for ack == nil || own == nil {
		m, err := a.next(ctx)
		if err != nil {
			t.Fatalf("waiting for ack and own copy: %v", err)
		}
		switch m.str("type") {
		case "ack":
			ack = m
		case "message":
			own = m
		}
	}
	if ack.str("ref") != "r1" || ack.str("id") == "" || own == nil || own.str("id") != ack.str("id") {
		t.Fatalf("ack %v, own copy %v", ack, own)
	}
	check(a, own)
}

func TestAnnounceNeedsOperator(t *testing.T) {
	e := newEnv(t, Config{})
	p := e.dial("player", "")
	op := e.dial("op", "&operator="+testOperator)
	p.sendJSON(map[string]string{"type": "post", "channel": "announce", "text": "I am the admin"})
	p.expectError(CodeForbidden)

	op.sendJSON(map[string]string{"type": "post", "channel": "announce", "text": "maintenance at 10"})
	for _, c := range []*tclient{p, op} {
		m := c.expect("message", func(m msg) bool { return m.str("channel") == "announce" })
		if m.str("text") != "maintenance at 10" || m.from() != "op" {
			t.Fatalf("%s got %v", c.uuid, m)
		}
	}

	// The HTTP form needs the operator token as a Bearer token.
	post := func(auth string, contentType ...string) int {
		req, _ := http.NewRequest("POST", "http://"+e.addr+"/v1/announce", strings.NewReader(`{"text":"over http"}`))
		req.Header.Set("Content-Type", append(contentType, "application/json")[0])
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("announce without token: %d", code)
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("announce with a wrong token: %d", code)
	}
	if code := post(testOperator, "text/plain"); code != http.StatusUnsupportedMediaType {
		t.Fatalf("announce as text/plain: %d, want 415", code)
	}
	if code := post(testOperator); code != http.StatusOK {
		t.Fatalf("announce with the operator token: %d", code)
	}
	p.expect("message", func(m msg) bool { return m.str("text") == "over http" && m.from() == "operator" })
}

func TestNoOperatorTokenConfiguredMeansNobody(t *testing.T) {
	e := newEnv(t, Config{OperatorToken: "x"})
	e.srv.cfg.OperatorToken = "" // as if started without --operator-token
	ctx, cancel := waitCtx()
	defer cancel()
	if _, err := wsconn.DialClient(ctx, e.url+"?token="+e.playerToken("u", "u")+"&operator=", 0); err == nil {
		t.Fatal("an empty operator token was accepted")
	}
}

func TestRoomChannelNeedsItsToken(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	b := e.dial("bob", "")
	out := e.dial("mallory", "")

	join := func(c *tclient, room, token string) {
		c.sendJSON(map[string]string{"type": "join", "channel": "room:" + room, "token": token})
	}
	join(out, "r1", "")
	out.expectError(CodeBadToken)
	join(out, "r1", e.roomToken("mallory", "r2")) // another room's token
	out.expectError(CodeForbidden)
	join(out, "r1", e.roomToken("alice", "r1")) // a member's token, another uuid
	out.expectError(CodeForbidden)
	join(out, "r1", e.playerToken("mallory", "m")) // not a room token
	out.expectError(CodeBadToken)
	forger, _ := auth.NewSigner("nope")
	forged, _ := forger.Mint(auth.KindRoom, auth.Claims{Subject: "mallory", Room: "r1"}, time.Hour)
	join(out, "r1", forged)
	out.expectError(CodeBadToken)
	expired, _ := e.signer.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }).
		Mint(auth.KindRoom, auth.Claims{Subject: "mallory", Room: "r1"}, time.Hour)
	join(out, "r1", expired)
	out.expectError(CodeBadToken)
	out.sendJSON(map[string]string{"type": "post", "channel": "room:r1", "text": "let me in"})
	out.expectError(CodeNotJoined)
	out.sendJSON(map[string]string{"type": "join", "channel": "room:bad id!", "token": "x"})
	out.expectError(CodeUnknownChannel)

	join(a, "r1", e.roomToken("alice", "r1"))
	a.expectJoined("room:r1")
	join(b, "r1", e.roomToken("bob", "r1"))
	b.expectJoined("room:r1")
	join(a, "r1", e.roomToken("alice", "r1"))
	a.expectError(CodeAlreadyJoined)

	a.sendJSON(map[string]string{"type": "post", "channel": "room:r1", "text": "gg"})
	for _, c := range []*tclient{a, b} {
		c.expect("message", func(m msg) bool { return m.str("channel") == "room:r1" && m.str("text") == "gg" && m.from() == "alice" })
	}
	for _, m := range out.roundTrip() {
		if m.str("channel") == "room:r1" {
			t.Fatalf("a non-member received %v", m)
		}
	}

	b.sendJSON(map[string]string{"type": "leave", "channel": "room:r1", "ref": "bye"})
	b.expect("left", func(m msg) bool { return m.str("channel") == "room:r1" && m.str("ref") == "bye" })
	a.sendJSON(map[string]string{"type": "post", "channel": "room:r1", "text": "alone"})
	a.expect("message", func(m msg) bool { return m.str("text") == "alone" })
	for _, m := range b.roundTrip() {
		if m.str("channel") == "room:r1" {
			t.Fatalf("a member who left received %v", m)
		}
	}
	b.sendJSON(map[string]string{"type": "leave", "channel": "room:r1"})
	b.expectError(CodeNotJoined)
}

func TestTextLimit(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	ok := strings.Repeat("é", 500) // 1000 bytes, 500 characters
	a.sendJSON(map[string]string{"type": "post", "channel": "world", "text": ok})
	a.expect("message", func(m msg) bool { return m.str("text") == ok })
	a.sendJSON(map[string]string{"type": "post", "channel": "world", "text": ok + "é"})
	a.expectError(CodeTooLong)
	a.sendJSON(map[string]string{"type": "post", "channel": "world", "text": "   "})
	a.expectError(CodeBadRequest)
	a.sendJSON(map[string]string{"type": "private", "to": "alice", "text": strings.Repeat("x", 501)})
	a.expectError(CodeTooLong)
}

func TestMalformedAndUnknownMessages(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	for raw, code := range map[string]string{
		`not json`:                       CodeBadJSON,
		`[1,2,3]`:                        CodeBadJSON,
		`{"type":"post","channel":`:      CodeBadJSON,
		`{"type":42}`:                    CodeBadJSON,
		`{}`:                             CodeBadRequest,
		`{"type":"dance"}`:               CodeUnknownType,
		`{"type":"post","channel":"x"}`:  CodeUnknownChannel,
		`{"type":"private","text":"hi"}`: CodeBadRequest,
	} {
		if err := a.Send([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		m := a.expect("error", nil)
		if m.str("code") != code {
			t.Fatalf("%s: code %q, want %q", raw, m.str("code"), code)
		}
	}
	a.roundTrip() // still connected and answering
}

func TestOversizedFrameCloses(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	b := e.dial("bob", "")
	if err := a.Send([]byte(`{"type":"post","channel":"world","text":"` + strings.Repeat("a", 65<<10) + `"}`)); err != nil {
		t.Fatal(err)
	}
	if code := a.waitClosed(); code != wsconn.CloseTooBig {
		t.Fatalf("close code %d, want %d", code, wsconn.CloseTooBig)
	}
	b.roundTrip()
}

func TestFloodIsRateLimitedThenClosed(t *testing.T) {
	// A token per 1000 s: only the burst of 10 is ever available here.
	e := newEnv(t, Config{Rate: 0.001, Burst: 10})
	a := e.dial("alice", "")
	a2 := e.dial("alice", "") // the same player's second connection
	b := e.dial("bob", "")
	for i := 0; i < 10; i++ {
		a.sendJSON(map[string]any{"type": "post", "channel": "world", "text": fmt.Sprint("m", i)})
	}
	a.expect("message", func(m msg) bool { return m.str("text") == "m9" })
	// The bucket is the player's: the second connection is limited too.
	a2.sendJSON(map[string]any{"type": "post", "channel": "world", "text": "from a2"})
	a2.expectError(CodeRateLimited)
	// Bob has his own bucket.
	b.sendJSON(map[string]any{"type": "post", "channel": "world", "text": "bob is fine"})
	b.expect("message", func(m msg) bool { return m.str("text") == "bob is fine" })

	// Keep flooding, one message per answer, so the close frame is not
	// lost to a reset caused by unread input.
	limited := 0
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
flood:
	for i := 0; i < 100; i++ {
		if a.SendJSON(map[string]any{"type": "post", "channel": "world", "text": "flood"}) != nil {
			break
		}
		for {
			m, err := a.next(ctx)
			if err != nil {
				break flood
			}
			if m.str("type") == "message" && m.str("text") == "flood" {
				t.Fatal("a flood message got through")
			}
			if m.str("type") == "error" {
				if m.str("code") != CodeRateLimited {
					t.Fatalf("error %v", m)
				}
				limited++
				break
			}
		}
	}
	if code := wsconn.CloseCode(a.CloseErr()); code != wsconn.ClosePolicy {
		t.Fatalf("flooder closed with %d (%v), want %d", code, a.CloseErr(), wsconn.ClosePolicy)
	}
	if limited == 0 || limited > 25 {
		t.Fatalf("%d rate_limited errors before the close", limited)
	}
	b.roundTrip()
	if got := counterValue(e.srv.m.floodCloses); got != 1 {
		t.Fatalf("flood closes %v", got)
	}
	// Reconnecting does not refill the bucket.
	a2.Close(wsconn.CloseNormal, "")
	waitfor.Cond(t, "alice to be gone", func() bool { return len(e.srv.players.connsOf("alice")) == 0 })
	a3 := e.dial("alice", "")
	a3.sendJSON(map[string]any{"type": "post", "channel": "world", "text": "fresh start?"})
	a3.expectError(CodeRateLimited)
}

// rawSlowClient does the WebSocket handshake over TCP with a tiny receive
// buffer and then never reads.
func rawSlowClient(t *testing.T, addr, token string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /ws?token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", token, addr)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	return conn // and never read again
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	e := newEnv(t, Config{Rate: 1e6, Burst: 1e6, WorldRate: -1, WS: wsconn.Options{SendQueue: 32}})
	poster := e.dial("poster", "")
	var got atomic.Int64
	arrived := make(chan struct{}, 1) // a message of the poster's came back
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the poster reads everything it is sent
		for {
			m, err := poster.next(ctx)
			if err != nil {
				return
			}
			if m.str("type") == "message" {
				got.Add(1)
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		}
	}()
	_ = rawSlowClient(t, e.addr, e.playerToken("sloth", "sloth"))
	slothHere := func() bool { return len(e.srv.players.connsOf("sloth")) == 1 }
	waitfor.Cond(t, "the slow client to connect", slothHere)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	text := strings.Repeat("€", 500) // 1500 bytes
	sent := int64(0)
	for ; sent < 20000 && slothHere(); sent++ {
		// Keep the poster itself a fast consumer: at most 8 of its own
		// messages in flight.
		for sent-got.Load() > 8 {
			waitfor.Recv(t, arrived, "one of the poster's messages back")
		}
		if err := poster.SendJSON(map[string]string{"type": "post", "channel": "world", "text": text}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Cond(t, "the slow consumer to be disconnected", func() bool { return !slothHere() })
	t.Logf("slow consumer disconnected after %d messages (%d bytes)", sent, sent*int64(len(text)))
	if got := counterValue(e.srv.m.slowConsumers); got != 1 {
		t.Fatalf("slow consumer closes %v", got)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Fatalf("heap grew by %d bytes with one slow consumer", grew)
	}
	// The poster was never affected.
	poster.sendJSON(map[string]string{"type": "post", "channel": "world", "text": "still here"})
	waitfor.Cond(t, "the poster's last message", func() bool { return got.Load() == sent+1 })
}

func TestPrivateMessagesReachOnlyThePair(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	b1 := e.dial("bob", "")
	b2 := e.dial("bob", "") // bob's second tab
	c := e.dial("carol", "")
	a.sendJSON(map[string]any{"type": "private", "to": "bob", "text": "psst", "from": map[string]string{"uuid": "carol"}, "ref": "p1"})
	for _, r := range []*tclient{b1, b2, a} {
		m := r.expect("private", nil)
		if m.str("text") != "psst" || m.from() != "alice" || m.str("to") != "bob" {
			t.Fatalf("%s got %v", r.uuid, m)
		}
	}
	a.expect("ack", func(m msg) bool { return m.str("ref") == "p1" })
	for _, m := range c.roundTrip() {
		if m.str("type") == "private" || strings.Contains(fmt.Sprint(m), "psst") {
			t.Fatalf("carol saw %v", m)
		}
	}
	a.sendJSON(map[string]any{"type": "private", "to": "nobody-here", "text": "hello?"})
	a.expectError(CodeOffline)
	a.sendJSON(map[string]any{"type": "private", "to": "has space", "text": "x"})
	a.expectError(CodeBadRequest)
}

func TestOnlineCount(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	b := e.dial("bob", "")
	_ = e.dial("bob", "") // a second connection of bob is still one player
	a.expect("online", func(m msg) bool { return m["count"] == float64(2) })
	b.Close(wsconn.CloseNormal, "")
	waitfor.Cond(t, "bob's first connection to go", func() bool { return e.srv.Connections() == 2 })
	if e.srv.Online() != 2 {
		t.Fatalf("online %d with bob's second tab still open", e.srv.Online())
	}
	// Leaving world lowers the count.
	a.sendJSON(map[string]string{"type": "leave", "channel": "world"})
	a.expect("left", nil)
	waitfor.Cond(t, "online to drop", func() bool { return e.srv.Online() == 1 })
}

func TestChannelLimitAndLeaveRejoin(t *testing.T) {
	e := newEnv(t, Config{MaxChannels: 3})
	a := e.dial("alice", "")
	a.sendJSON(map[string]string{"type": "join", "channel": "room:r1", "token": e.roomToken("alice", "r1")})
	a.expectJoined("room:r1")
	a.sendJSON(map[string]string{"type": "join", "channel": "room:r2", "token": e.roomToken("alice", "r2")})
	a.expectError(CodeTooMany)
	a.sendJSON(map[string]string{"type": "leave", "channel": "announce"})
	a.expect("left", nil)
	a.sendJSON(map[string]string{"type": "join", "channel": "announce"})
	a.expectJoined("announce")
}

func TestJoinDuringPostsSeesEachMessageOnce(t *testing.T) {
	e := newEnv(t, Config{Rate: 1e6, Burst: 1e6})
	a := e.dial("alice", "")
	a.sendJSON(map[string]string{"type": "join", "channel": "room:r", "token": e.roomToken("alice", "r")})
	a.expectJoined("room:r")
	const n = 40 // under the history size: every message is in history or live
	go func() {
		for i := 0; i < n; i++ {
			_ = a.SendJSON(map[string]any{"type": "post", "channel": "room:r", "text": fmt.Sprint(i)})
		}
	}()
	b := e.dial("bob", "")
	b.sendJSON(map[string]string{"type": "join", "channel": "room:r", "token": e.roomToken("bob", "r")})
	seen := map[string]int{}
	ctx, cancel := waitCtx()
	defer cancel()
	for len(seen) < n {
		m, err := b.next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(seen), err)
		}
		switch m.str("type") {
		case "history":
			if m.str("channel") != "room:r" {
				continue
			}
			for _, x := range m["messages"].([]any) {
				seen[x.(map[string]any)["text"].(string)]++
			}
		case "message":
			if m.str("channel") == "room:r" {
				seen[m.str("text")]++
			}
		}
	}
	for text, k := range seen {
		if k != 1 {
			t.Fatalf("message %s seen %d times", text, k)
		}
	}
}

func TestHistoryOnJoinAndAcrossRestart(t *testing.T) {
	cfg := Config{Rate: 1e6, Burst: 1e6}
	e := newEnv(t, cfg)
	a := e.dial("alice", "")
	a.sendJSON(map[string]string{"type": "join", "channel": "room:r9", "token": e.roomToken("alice", "r9")})
	a.expectJoined("room:r9")
	for i := 0; i < 60; i++ {
		a.sendJSON(map[string]string{"type": "post", "channel": "world", "text": fmt.Sprint("w", i)})
	}
	a.sendJSON(map[string]string{"type": "post", "channel": "room:r9", "text": "room line"})
	a.expect("message", func(m msg) bool { return m.str("text") == "room line" })
	// A newcomer gets the last 50, oldest first.
	b := e.dialRaw("bob", "")
	checkWorld := func(c *tclient) {
		c.t.Helper()
		h := c.expect("history", func(m msg) bool { return m.str("channel") == "world" })
		ms := h["messages"].([]any)
		if len(ms) != 50 || ms[0].(map[string]any)["text"] != "w10" || ms[49].(map[string]any)["text"] != "w59" {
			t.Fatalf("world history: %d messages, %v ... %v", len(ms), ms[0], ms[len(ms)-1])
		}
		if ms[0].(map[string]any)["from"].(map[string]any)["uuid"] != "alice" {
			t.Fatalf("history sender %v", ms[0])
		}
	}
	checkWorld(b)

	// Restart: a new server on the same store shows the same history.
	e.stop()
	e2 := newEnvOn(t, cfg, e.st)
	c := e2.dialRaw("carol", "")
	checkWorld(c)
	c.sendJSON(map[string]string{"type": "join", "channel": "room:r9", "token": e2.roomToken("carol", "r9")})
	h := c.expect("history", func(m msg) bool { return m.str("channel") == "room:r9" })
	if ms := h["messages"].([]any); len(ms) != 1 || ms[0].(map[string]any)["text"] != "room line" {
		t.Fatalf("room history after restart: %v", h)
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("alice", "")
	ctx, cancel := waitCtx()
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code := a.waitClosed(); code != wsconn.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	resp, err := http.Get("http://" + e.addr + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatal("still serving after shutdown")
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestStalledShardNeverBlocksPosters: a channel shard that is stuck (here:
// encoding history for a joining member) never blocks the connections
// posting to its channel. The poster's read goroutine keeps answering; the
// shard, once unstuck, delivers the newest messages its queue kept and
// counts the ones it dropped.
func TestStalledShardNeverBlocksPosters(t *testing.T) {
	e := newEnv(t, Config{Rate: 10000, Burst: 10000})
	poster := e.dial("poster", "")
	poster.sendJSON(map[string]string{"type": "join", "channel": "room:r1", "token": e.roomToken("poster", "r1")})
	poster.expectJoined("room:r1")
	// A new history snapshot, whose frames nobody has encoded yet.
	poster.sendJSON(map[string]string{"type": "post", "channel": "room:r1", "text": "first"})
	poster.expect("message", func(m msg) bool { return m.str("text") == "first" })

	e.srv.hub.mu.Lock()
	ch := e.srv.hub.rooms["room:r1"]
	e.srv.hub.mu.Unlock()
	snap := ch.snap.Load()
	block, inside := make(chan struct{}), make(chan struct{})
	go snap.once.Do(func() { close(inside); <-block })
	waitfor.Closed(t, inside, "history encoding blocked")
	unblock := sync.OnceFunc(func() { close(block) })
	t.Cleanup(unblock)

	joiner := e.dial("joiner", "")
	joiner.sendJSON(map[string]string{"type": "join", "channel": "room:r1", "token": e.roomToken("joiner", "r1")})
	// The shard takes the join, sends "joined" and then blocks encoding
	// the history of the snapshot it read (nothing is posted before).
	joiner.expect("joined", func(m msg) bool { return m.str("channel") == "room:r1" })

	const posts = 500
	for i := 0; i < posts; i++ {
		poster.sendJSON(map[string]string{"type": "post", "channel": "room:r1", "text": fmt.Sprint("m", i)})
		if i%50 == 49 {
			poster.roundTrip() // fails after 5 s if a post blocked the poster's connection
		}
	}

	unblock() // (the blocked snapshot's history stays unencoded: the joiner gets no history frames)
	joiner.expect("message", func(m msg) bool { return m.str("text") == fmt.Sprint("m", posts-1) })
	poster.expect("message", func(m msg) bool { return m.str("text") == fmt.Sprint("m", posts-1) })
	if d := counterValue(e.srv.m.dropped); d != posts-roomInbox {
		t.Fatalf("dropped %v messages, want %d (all but the newest %d)", d, posts-roomInbox, roomInbox)
	}
}

// TestPingsCountAgainstTheRateLimit: WebSocket pings spend the player's
// message budget like messages, and a ping flood closes the connection
// with 1008 (20,000 pings were all answered once).
func TestPingsCountAgainstTheRateLimit(t *testing.T) {
	e := newEnv(t, Config{Rate: 0.001, Burst: 10})
	ctx, cancel := waitCtx()
	defer cancel()
	res, err := wsconntest.PingFlood(ctx, e.url+"?token="+e.playerToken("pinger", "pinger"), nil, 20000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Pongs > 10 || !res.Closed || res.CloseCode != wsconn.ClosePolicy {
		t.Fatalf("ping flood: %+v; want at most the burst of 10 answered, then a 1008 close", res)
	}
	// The budget was the player's: a second connection cannot post.
	a := e.dial("pinger", "")
	a.sendJSON(map[string]any{"type": "post", "channel": "world", "text": "hi"})
	a.expectError(CodeRateLimited)
}

// TestUpgradeChecksOrigin: a page of another site cannot open the chat
// WebSocket with a visitor's token; the arena pages' host, localhost and
// clients without an Origin can.
func TestUpgradeChecksOrigin(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.playerToken("o", "o")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"", true}, {"http://127.0.0.1:8080", true}, {"http://localhost:8080", true}, {"https://evil.example", false}} {
		code, err := wsconntest.UpgradeStatus(e.url+"?token="+tok, tc.origin)
		if want := map[bool]int{true: 101, false: 403}[tc.ok]; code != want {
			t.Fatalf("origin %q: %d %v, want %d", tc.origin, code, err, want)
		}
	}
}

// TestTextAndNamesAreSafe: chat text with control, bidirectional-override
// or invisible characters is refused with bad_text (private messages and
// announcements too); a display name from a token has them removed.
func TestTextAndNamesAreSafe(t *testing.T) {
	e := newEnv(t, Config{Rate: 1000, Burst: 1000})
	ctx, cancel := waitCtx()
	defer cancel()
	tok, err := e.signer.Mint(auth.KindPlayer, auth.Claims{Subject: "spoof", Name: "admin\u202e\u2066x\u2069"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := wsconn.DialClient(ctx, e.url+"?token="+tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := &tclient{Client: cl, t: t, uuid: "spoof"}
	if w := a.expect("welcome", nil); w.str("username") != "adminx" {
		t.Fatalf("welcome username %q, want the name without its bidi controls", w.str("username"))
	}
	b := e.dial("bob", "")
	for _, text := range []string{"evil\u202egnp.exe", "two\nlines", "nul\x00", "\u2066isolated\u2069", "bom\ufeff"} {
		a.sendJSON(map[string]any{"type": "post", "channel": "world", "text": text})
		a.expectError(CodeBadText)
		a.sendJSON(map[string]any{"type": "private", "to": "bob", "text": text})
		a.expectError(CodeBadText)
	}
	a.sendJSON(map[string]any{"type": "post", "channel": "world", "text": "fine 👨\u200d👩\u200d👧 ✓"})
	m := b.expect("message", nil)
	if m.str("text") != "fine 👨\u200d👩\u200d👧 ✓" {
		t.Fatalf("message %v", m)
	}
	if f, _ := m["from"].(map[string]any); f["username"] != "adminx" {
		t.Fatalf("from %v, want the stripped name", m["from"])
	}
	if _, err := e.srv.Announce(ctx, Sender{UUID: "operator", Username: "operator"}, "x\u202e"); asProtocolError(err).Code != CodeBadText {
		t.Fatalf("announce with a bidi override: %v", err)
	}
}

// TestRevokedTokenRefused: a player token issued before the second from
// which the dispatcher recorded its player's tokens valid (a password
// change, a sign-out of the other devices) is refused with 401; the fresh
// token, and another player's, are not.
func TestRevokedTokenRefused(t *testing.T) {
	e := newEnv(t, Config{})
	old := e.playerToken("u1", "x")
	from := time.Now().Unix() + 1
	if err := records.PutTokensValidFrom(context.Background(), e.st, "u1", from, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := waitCtx()
	defer cancel()
	if _, err := wsconn.DialClient(ctx, e.url+"?token="+old, 0); err == nil || !strings.Contains(err.Error(), "http 401") {
		t.Fatalf("dial with a revoked token: %v, want an HTTP 401 refusal", err)
	}
	fresh, err := e.signer.MintFrom(auth.KindPlayer, auth.Claims{Subject: "u1", Name: "x"}, from, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := wsconn.DialClient(ctx, e.url+"?token="+fresh, 4096)
	if err != nil {
		t.Fatalf("dial with the fresh token: %v", err)
	}
	defer cl.Close(wsconn.CloseNormal, "")
	(&tclient{Client: cl, t: t, uuid: "u1"}).expect("welcome", nil)
	e.dial("u2", "") // another player: not affected
}
