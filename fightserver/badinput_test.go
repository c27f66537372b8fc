package fightserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
)

func TestJoinRefusals(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	p := r.Players[0]
	claims := auth.Claims{Subject: p.UUID, Name: p.Username, Room: r.ID}
	mint := func(s *auth.Signer, kind string, c auth.Claims, ttl time.Duration) string {
		tok, err := s.Mint(kind, c, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := auth.NewSigner("another cluster's secret")
	past := e.signer.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	stranger := claims
	stranger.Subject = auth.NewUUID()
	elsewhere := claims
	elsewhere.Room = "someotherroom"
	noRoom := claims
	noRoom.Room = ""
	valid := e.ticket(r, 0)
	tampered := valid[:len(valid)-2] + "xx"
	if strings.HasSuffix(valid, "xx") {
		tampered = valid[:len(valid)-2] + "yy"
	}
	for _, tc := range []struct {
		name, ticket, code string
	}{
		{"missing", "", CodeBadTicket},
		{"garbage", "not-a-token", CodeBadTicket},
		{"forged", mint(other, auth.KindRoom, claims, time.Hour), CodeBadTicket},
		{"tampered signature", tampered, CodeBadTicket},
		{"expired", mint(past, auth.KindRoom, claims, time.Hour), CodeExpiredTicket},
		{"player token", mint(e.signer, auth.KindPlayer, claims, time.Hour), CodeWrongKind},
		{"map ticket", mint(e.signer, auth.KindMap, claims, time.Hour), CodeWrongKind},
		{"another room", mint(e.signer, auth.KindRoom, elsewhere, time.Hour), CodeWrongRoom},
		{"no room", mint(e.signer, auth.KindRoom, noRoom, time.Hour), CodeBadTicket},
		{"not a member", mint(e.signer, auth.KindRoom, stranger, time.Hour), CodeNotMember},
		{"too long", strings.Repeat("a", auth.MaxTokenLen+1), CodeBadTicket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := e.dial(tc.ticket)
			expectError(t, cl, tc.code)
			expectClosed(t, cl, wsconn.ClosePolicy)
		})
	}
	// None of that disturbed the room.
	ca, cb := e.join(r, 0), e.join(r, 1)
	send(t, ca, `{"type":"event","event":"move_to","tx":1,"ty":1}`)
	if m := expect(t, cb, "event"); m.str("uuid") != p.UUID {
		t.Fatalf("relayed %v", m)
	}
}

func TestMalformedAndUnknownMessages(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca := e.join(r, 0)
	for _, tc := range []struct{ in, code string }{
		{`not json`, CodeBadJSON},
		{`{"type":`, CodeBadJSON},
		{`{"type":"event"}}`, CodeBadJSON},
		{`[1,2]`, CodeBadJSON},
		{` [1]`, CodeBadJSON},
		{`null`, CodeBadJSON},
		{`"event"`, CodeBadJSON},
		{`{}`, CodeUnknownType},
		{`{"type":5}`, CodeUnknownType},
		{`{"type":"dance"}`, CodeUnknownType},
		{`{"type":"create_player","uuid":"x"}`, CodeUnknownType},
		{`{"type":"event"}`, CodeUnknownEvent},
		{`{"type":"event","event":"fly","tx":1,"ty":1}`, CodeUnknownEvent},
		{`{"type":"event","event":7}`, CodeBadEvent},
	} {
		send(t, ca, tc.in)
		if m := expectError(t, ca, tc.code); m.str("message") == "" {
			t.Fatalf("%s: error without a message", tc.in)
		}
	}
	expectOpen(t, ca) // errors, not closes
}

func TestBadEventFields(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	target := r.Players[1].UUID
	for _, in := range []string{
		`{"type":"event","event":"move_to","tx":"1","ty":2}`,
		`{"type":"event","event":"move_to","tx":1}`,
		`{"type":"event","event":"move_to","tx":1e6,"ty":2}`,
		`{"type":"event","event":"move_to","tx":1,"ty":-100001}`,
		`{"type":"event","event":"move_to","tx":1,"ty":1e400}`,
		`{"type":"event","event":"move_to","tx":null,"ty":1}`,
		`{"type":"event","event":"blink","tx":true,"ty":1}`,
		`{"type":"event","event":"move_to","tx":1,"ty":1,"ts":-1}`,
		`{"type":"event","event":"move_to","tx":1,"ty":1,"ts":1.5}`,
		`{"type":"event","event":"move_to","tx":1,"ty":1,"ts":1e17}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":1}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":1,"ball_uuid":"has space"}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":1,"ball_uuid":"` + strings.Repeat("b", 65) + `"}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":1,"ball_uuid":5}`,
		`{"type":"event","event":"attack","target":"` + target + `","ball_uuid":"b","x":0,"y":0}`,
		`{"type":"event","event":"attack","target":"` + target + `","ball_uuid":"b","x":0,"y":0,"angle":100}`,
		`{"type":"event","event":"attack","ball_uuid":"b","x":0,"y":0,"angle":0}`,
		`{"type":"event","event":"attack","target":["x"],"ball_uuid":"b","x":0,"y":0,"angle":0}`,
		`{"type":"event","event":"message"}`,
		`{"type":"event","event":"message","text":""}`,
		`{"type":"event","event":"message","text":"` + strings.Repeat("é", MaxTextRunes+1) + `"}`,
		`{"type":"event","event":"message","text":"bell\u0007"}`,
		`{"type":"event","event":"message","text":"evil\u202egnp.exe"}`,
		`{"type":"event","event":"message","text":"c1\u0085"}`,
		`{"type":"event","event":"message","text":"sep\u2028"}`,
		`{"type":"event","event":"message","text":{"a":1}}`,
	} {
		send(t, ca, in)
		expectError(t, ca, CodeBadEvent)
	}
	// The longest message is fine, and nothing invalid reached b.
	long := strings.Repeat("é", MaxTextRunes)
	send(t, ca, `{"type":"event","event":"message","text":"`+long+`"}`)
	if m := expect(t, cb, "event"); m.str("text") != long {
		t.Fatalf("b got %v before the valid message", m)
	}
}

func TestOversizedFrameCloses(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	send(t, ca, `{"type":"event","event":"message","text":"`+strings.Repeat("a", 65<<10)+`"}`)
	expectClosed(t, ca, wsconn.CloseTooBig)
	if m := expect(t, cb, "player_away"); m.str("uuid") != r.Players[0].UUID {
		t.Fatalf("b got %v", m)
	}
}

func TestEventFloodClosed(t *testing.T) {
	// A bucket of 10 that refills once in 1000 s: the 11th message is over
	// the limit however slow the machine. Exactly 11 are sent, so the
	// client writes nothing after the server's close.
	e := newEnv(t, Config{Config: sdk.Config{EventRate: 0.001, EventBurst: 10}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	for i := 0; i < 11; i++ {
		send(t, ca, `{"type":"event","event":"move_to","tx":1,"ty":1}`)
	}
	expectError(t, ca, CodeRateLimited)
	expectClosed(t, ca, wsconn.ClosePolicy)
	// b received the burst, then the flooder's absence.
	n := 0
	for {
		m, _ := recv(t, cb)
		if m.str("type") == "player_away" {
			break
		}
		if m.str("type") == "event" {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("b received %d flooded events, want 10", n)
	}
	// The limit is per player: rejoining does not refill the bucket.
	ca2 := e.dial(e.ticket(r, 0))
	expect(t, ca2, "state")
	send(t, ca2, `{"type":"ping"}`)
	expectError(t, ca2, CodeRateLimited)
	expectClosed(t, ca2, wsconn.ClosePolicy)
}

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	e.join(r, 0)
	get := func(path string) string {
		resp, err := http.Get("http://" + e.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if b := get("/healthz"); b != "ok" {
		t.Fatalf("healthz %q", b)
	}
	if b := get("/metrics"); !strings.Contains(b, `arena_game_rooms{game="fight"} 1`) || !strings.Contains(b, `arena_game_connections{game="fight"} 1`) || !strings.Contains(b, "arena_fight_events_total") {
		t.Fatalf("metrics:\n%s", b)
	}
	// A plain HTTP request to /ws is refused, not upgraded.
	resp, err := http.Get("http://" + e.addr + "/ws?ticket=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("plain GET /ws: %d", resp.StatusCode)
	}
	st := e.srv.Status()
	if st.Load != 1 || st.Connections != 1 {
		t.Fatalf("status %+v", st)
	}
}
