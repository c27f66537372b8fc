package integration

import (
	"errors"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
)

// TestUpRunsEverything starts `arena up` and checks every kind of process
// is running and reachable: fight, map and the chat server it spawns.
func TestUpRunsEverything(t *testing.T) {
	chat := freePort(t)
	a := startArena(t, "up", "--chat-port", strconv.Itoa(chat), "--credentials", t.TempDir()+"/creds.json")
	ctx := ctxT(t, 60*time.Second)
	waitReady(t, a, "fight", "map", "chat")
	var cfg struct{ Chat string }
	if code := api(t, a, "GET", "/v1/config", "", nil, &cfg); code != 200 || cfg.Chat != "ws://127.0.0.1:"+strconv.Itoa(chat)+"/ws" {
		t.Fatalf("/v1/config: %d %+v", code, cfg)
	}
	// Two guests chat on world.
	_, tokA := a.login(t, "ann")
	_, tokB := a.login(t, "bob")
	ca, err := wsconn.DialClient(ctx, cfg.Chat+"?token="+url.QueryEscape(tokA), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(wsconn.CloseNormal, "")
	cb, err := wsconn.DialClient(ctx, cfg.Chat+"?token="+url.QueryEscape(tokB), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(wsconn.CloseNormal, "")
	if err := ca.RecvType(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	if err := cb.RecvType(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	// Once bob has joined world, ann's post reaches him live.
	for {
		var j struct{ Channel string }
		if err := cb.RecvType(ctx, "joined", &j); err != nil {
			t.Fatal(err)
		}
		if j.Channel == "world" {
			break
		}
	}
	if err := ca.SendJSON(map[string]string{"type": "post", "channel": "world", "text": "hello from ann"}); err != nil {
		t.Fatal(err)
	}
	for {
		var m struct {
			Channel, Text string
			From          struct{ Username string }
		}
		if err := cb.RecvType(ctx, "message", &m); err != nil {
			t.Fatal(err)
		}
		if m.Text == "hello from ann" {
			if m.From.Username != "ann" || m.Channel != "world" {
				t.Fatalf("message %+v", m)
			}
			break
		}
	}
	// The play page is served.
	if code := api(t, a, "GET", "/", "", nil, nil); code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	// arena line speaks the line protocol without netcat.
	out, err := exec.Command(arenaBin, "line", "--addr", a.Line, "get", "bogus").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[1] != "err|unknown verb" {
		t.Fatalf("arena line: %q %v", out, err)
	}
	if port, perr := strconv.Atoi(lines[0]); perr != nil || port <= 0 {
		t.Fatalf("arena line get: %q", lines[0])
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("arena line with an err| answer exited %v, want status 1", err)
	}
}
