package chatserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

func TestParseInbound(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code string // "" means accepted
	}{
		{`{"type":"post","channel":"world","text":"hi"}`, ""},
		{`  {"type":"ping"}`, ""},
		{`{"type":"join","channel":"room:abc-1_2-3","token":"t"}`, ""},
		{`{"type":"private","to":"u-1","text":"x"}`, ""},
		{``, CodeBadJSON},
		{`"post"`, CodeBadJSON},
		{`null`, CodeBadJSON},
		{`{"type":"post"`, CodeBadJSON},
		{`{"type":["post"]}`, CodeBadJSON},
		{`{"type":""}`, CodeBadRequest},
		{`{"type":"post","channel":"world"}`, CodeBadRequest},
		{`{"type":"post","channel":"world","text":"` + strings.Repeat("ü", 501) + `"}`, CodeTooLong},
		{`{"type":"post","channel":"world","text":"x","ref":"` + strings.Repeat("r", 65) + `"}`, CodeBadRequest},
		{`{"type":"post","channel":"room:","text":"x"}`, CodeUnknownChannel},
		{`{"type":"post","channel":"room:a b","text":"x"}`, CodeUnknownChannel},
		{`{"type":"post","channel":"room:` + strings.Repeat("a", 65) + `","text":"x"}`, CodeUnknownChannel},
		{`{"type":"post","channel":"World","text":"x"}`, CodeUnknownChannel},
		{`{"type":"private","to":"","text":"x"}`, CodeBadRequest},
		{`{"type":"private","to":"` + strings.Repeat("u", 65) + `","text":"x"}`, CodeBadRequest},
		{`{"type":"nope"}`, CodeUnknownType},
	} {
		_, err := ParseInbound([]byte(tc.in), 500)
		got := ""
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: non-protocol error %v", tc.in, err)
			}
			got = pe.Code
		}
		if got != tc.code {
			t.Errorf("%.60s: code %q, want %q (%v)", tc.in, got, tc.code, err)
		}
	}
}

func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{
		`{"type":"post","channel":"world","text":"hi"}`,
		`{"type":"join","channel":"room:r1","token":"a.b"}`,
		`{"type":"private","to":"u","text":"x","ref":"1"}`,
		`{"type":"leave","channel":"announce"}`,
		`{"type":"ping"}`, `[]`, `{`, "\xff\xfe", `{"type":"post","text":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInbound(data, 500)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
				t.Fatalf("bad error %v", err)
			}
			// The error frame must always encode.
			var back map[string]any
			if json.Unmarshal(encodeError(pe.Code, pe.Message, in.Ref), &back) != nil {
				t.Fatal("error frame does not decode")
			}
			return
		}
		switch in.Type {
		case "ping", "join", "leave", "post", "private":
		default:
			t.Fatalf("accepted type %q", in.Type)
		}
		if in.Type == "post" || in.Type == "private" {
			if err := checkText(in.Text, 500); err != nil {
				t.Fatalf("accepted bad text: %v", err)
			}
		}
	})
}

func TestHistoryFramesSplit(t *testing.T) {
	var entries []json.RawMessage
	for i := 0; i < 50; i++ {
		b, _ := json.Marshal(Message{Type: "message", Channel: "world", ID: fmt.Sprint(i), Text: strings.Repeat("\u0001", 500)})
		entries = append(entries, b) // ~3 KB each once escaped
	}
	frames := historyFrames("world", entries, 32<<10)
	if len(frames) < 4 {
		t.Fatalf("%d frames", len(frames))
	}
	n := 0
	for i, f := range frames {
		if len(f) > 32<<10 {
			t.Fatalf("frame %d is %d bytes", i, len(f))
		}
		var h struct {
			Type     string            `json:"type"`
			Messages []json.RawMessage `json:"messages"`
			Last     bool              `json:"last"`
		}
		if err := json.Unmarshal(f, &h); err != nil || h.Type != "history" || h.Last != (i == len(frames)-1) {
			t.Fatalf("frame %d: %v %+v", i, err, h)
		}
		n += len(h.Messages)
	}
	if n != 50 {
		t.Fatalf("%d messages over the frames", n)
	}
	if f := historyFrames("world", nil, 1024); len(f) != 1 || string(f[0]) != `{"type":"history","channel":"world","messages":[],"last":true}` {
		t.Fatalf("empty history %s", f)
	}
}

func TestHistoryConcurrentWritersKeepEveryMessage(t *testing.T) {
	st := storetest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := newMetrics(nil)
	// Two history logs on one store, as two chat servers would be. Each
	// writes every message on its own (it waits until its last append is
	// written), so the two logs' compare-and-swap writes race each other
	// twenty times.
	h1, h2 := newHistoryLog(st, 50, log, m), newHistoryLog(st, 50, log, m)
	written := func(h *historyLog) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.pending) == 0 && len(h.inflight) == 0
	}
	var wg sync.WaitGroup
	for w, h := range []*historyLog{h1, h2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				h.Append("room:x", entry{id: id, raw: json.RawMessage(`{"id":"` + id + `"}`)})
				if !waitfor.Poll(waitfor.Deadline(), func() bool { return written(h) }) {
					t.Errorf("writer %d: message %d not written", w, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := waitCtx()
	defer cancel()
	if err := h1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h3 := newHistoryLog(st, 50, log, m)
	defer h3.Close(ctx)
	got, err := h3.Load(ctx, "room:x")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 {
		t.Fatalf("%d of 40 messages kept", len(got))
	}
	if counterValue(m.historyErrors) != 0 {
		t.Fatal("history write errors")
	}
	it, err := st.Get(ctx, HistoryKey("room:x"))
	if err != nil || it == nil {
		t.Fatalf("record: %v", err)
	}
}

func TestHistoryCorruptRecordIsReplaced(t *testing.T) {
	st := store.NewMemory()
	ctx, cancel := waitCtx()
	defer cancel()
	_ = st.Set(ctx, &store.Item{Key: HistoryKey("world"), Value: []byte("garbage")})
	h := newHistoryLog(st, 50, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(nil))
	h.Append("world", entry{id: "a", raw: json.RawMessage(`{"id":"a"}`)})
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := newHistoryLog(st, 50, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(nil))
	defer h2.Close(ctx)
	got, err := h2.Load(ctx, "world")
	if err != nil || len(got) != 1 || got[0].id != "a" {
		t.Fatalf("%v %v", got, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestFleetProcess(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := storetest.Addrs(t)
	port := freePort(t)
	cfg := proc.StartRequest{
		Kind: Kind, BindHost: "127.0.0.1", Port: port, Memcache: addrs, StorePrefix: "fleettest.",
		Secret: testSecret, Chat: &procpb.ChatOptions{OperatorToken: testOperator, Rate: proto.Float64(7)},
	}
	p := NewProcess(log)
	ctx, cancel := waitCtx()
	defer cancel()
	if _, err := p.Status(ctx); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	started, err := p.Start(ctx, cfg)
	for attempt := 0; attempt < 5 && errors.Is(err, proc.ErrPortInUse); attempt++ {
		// Taken by a parallel test process since freePort saw it free.
		port = freePort(t)
		cfg.Port = port
		started, err = p.Start(ctx, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	addr := started.Addr
	defer p.Stop(5 * time.Second)
	if addr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("addr %s", addr)
	}
	// A second process on the same port is told the port is taken.
	p2 := NewProcess(log)
	if _, err := p2.Start(ctx, cfg); !errors.Is(err, proc.ErrPortInUse) {
		t.Fatalf("second start: %v, want ErrPortInUse", err)
	}

	e := &testEnv{t: t}
	e.signer = p.srv.signer
	e.url = "ws://" + addr + "/ws"
	c := e.dialRaw("u1", "&operator="+testOperator)
	if w := c.expect("welcome", nil); w["operator"] != true || w["limits"].(map[string]any)["rate"] != float64(7) {
		t.Fatalf("welcome %v: options not applied", w)
	}
	// Wait for the automatic joins: a post that races the join would
	// arrive in the joined channel's history frame, not live.
	c.expectJoined(ChannelWorld, ChannelAnnounce)
	st, err := p.Status(ctx)
	if err != nil || st.Connections != 1 || st.Load != 1 || st.Draining {
		t.Fatalf("status %+v %v", st, err)
	}
	c.sendJSON(map[string]string{"type": "post", "channel": "announce", "text": "from the fleet"})
	c.expect("message", func(m msg) bool { return m.str("text") == "from the fleet" })

	left, err := p.Drain(ctx, time.Now().Add(5*time.Second))
	if err != nil || left != 0 {
		t.Fatalf("drain: %d left, %v", left, err)
	}
	if code := c.waitClosed(); code != wsconn.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	if st, _ := p.Status(ctx); !st.Draining {
		t.Fatal("not draining after Drain")
	}
}

func TestFleetProcessEmbeddedStoreAndBadConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := waitCtx()
	defer cancel()
	p := NewProcess(log)
	if _, err := p.Start(ctx, proc.StartRequest{BindHost: "127.0.0.1", Port: freePort(t)}); !errors.Is(err, proc.ErrBadOptions) {
		t.Fatalf("started without a secret: %v", err)
	}
	if _, err := p.Start(ctx, proc.StartRequest{BindHost: "127.0.0.1", Port: freePort(t), Secret: "s",
		Chat: &procpb.ChatOptions{Rate: proto.Float64(0)}}); !errors.Is(err, proc.ErrBadOptions) {
		t.Fatalf("started with rate=0: %v", err)
	}
	_, err := p.Start(ctx, proc.StartRequest{BindHost: "127.0.0.1", Port: freePort(t), Secret: "s"})
	for attempt := 0; attempt < 5 && errors.Is(err, proc.ErrPortInUse); attempt++ {
		_, err = p.Start(ctx, proc.StartRequest{BindHost: "127.0.0.1", Port: freePort(t), Secret: "s"})
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(5 * time.Second)
	p.Stop(5 * time.Second) // twice is fine
}

func TestRaiseFileLimit(t *testing.T) {
	n, err := RaiseFileLimit(1024)
	if err != nil || n < 1024 {
		t.Fatalf("%d %v", n, err)
	}
}

func TestPlayersKeepBucketAfterLastConnection(t *testing.T) {
	ps := newPlayers(1, 2)
	c := &client{sender: Sender{UUID: "u"}}
	p := ps.add(c)
	p.bucket.Allow()
	ps.remove(c)
	if ps.connsOf("u") != nil || ps.conns.Load() != 0 {
		t.Fatal("connection still listed")
	}
	c2 := &client{sender: Sender{UUID: "u"}}
	if ps.add(c2) != p {
		t.Fatal("a reconnect got a fresh player (and bucket)")
	}
	ps.remove(c2)
	ps.sweep(time.Now().Add(time.Second))
	if ps.add(&client{sender: Sender{UUID: "u"}}) == p {
		t.Fatal("sweep kept a departed player")
	}
}

func TestConfigFromOptions(t *testing.T) {
	o := &procpb.ChatOptions{}
	if err := proc.SetOptions(o, []string{"rate=2.5", "burst=7", "world-rate=-1", "max-conns=100", "send-queue=64"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromOptions(Config{}, o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rate != 2.5 || cfg.Burst != 7 || cfg.WorldRate != -1 || cfg.MaxConns != 100 || cfg.WS.SendQueue != 64 {
		t.Fatalf("%+v", cfg)
	}
	for _, bad := range []*procpb.ChatOptions{
		{Rate: proto.Float64(0)}, {Burst: proto.Int32(0)}, {MaxConns: proto.Int32(-1)}, {SendQueue: proto.Int32(2)},
	} {
		if _, err := ConfigFromOptions(Config{}, bad); !errors.Is(err, proc.ErrBadOptions) {
			t.Errorf("%v: %v, want proc.ErrBadOptions", bad, err)
		}
	}
}

// TestRoomChannelIDsFollowTheIDRule: a room channel's id is an arena id
// (internal/ids), the same rule the dispatcher uses for the room ids it
// makes; chat once also allowed '.'.
func TestRoomChannelIDsFollowTheIDRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"room:abc-DEF_1", true},
		{"room:" + strings.Repeat("r", 64), true},
		{"room:a.b", false},
		{"room:..", false},
		{"room:" + strings.Repeat("r", 65), false},
		{"room:", false},
	} {
		kind, err := ParseChannel(tc.name)
		if got := err == nil && kind == KindRoom; got != tc.ok {
			t.Errorf("ParseChannel(%q) = %v, %v; want ok=%v", tc.name, kind, err, tc.ok)
		}
	}
}
