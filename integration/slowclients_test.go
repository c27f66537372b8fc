package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsconn/wsconntest"
)

// TestTricklingBodiesDoNotStarve is issue 14's item 2 attack, retried: one
// address opens 1,100 connections that each send a POST's headers and one
// byte of its 100-byte body, then nothing, against a dispatcher whose
// open-file limit is 1,024. The dispatcher answers most of them 503 at once
// (the per-address cap), cuts the rest off 10 s after their headers, and
// meanwhile keeps answering /healthz and the line protocol for everyone
// else.
func TestTricklingBodiesDoNotStarve(t *testing.T) {
	if _, err := os.Stat("/usr/bin/prlimit"); err != nil {
		t.Skip("prlimit(1) not installed")
	}
	a := startArenaWith(t, startOpts{noFile: 1024}, "dispatcher", "--guest-login")
	const n = 1100
	type held struct {
		c    net.Conn
		sent time.Time
	}
	var (
		mu      sync.Mutex
		conns   []held
		dialErr int
	)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 3 * time.Second}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.Dial("tcp", a.HTTP)
			if err != nil {
				mu.Lock()
				dialErr++
				mu.Unlock()
				return
			}
			fmt.Fprintf(c, "POST /v1/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", a.HTTP)
			mu.Lock()
			conns = append(conns, held{c, time.Now()})
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, h := range conns {
			h.c.Close()
		}
	})
	t.Logf("%d connections open, %d dials failed", len(conns), dialErr)

	// Everyone else is still served, at once.
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + a.HTTP + "/healthz")
	if err != nil {
		t.Fatalf("/healthz while 1,100 bodies trickle: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	lc, err := net.DialTimeout("tcp", a.Line, 3*time.Second)
	if err != nil {
		t.Fatalf("line protocol while 1,100 bodies trickle: %v", err)
	}
	defer lc.Close()
	_ = lc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(lc, "stat\n")
	if line, err := bufio.NewReader(lc).ReadString('\n'); err != nil || !strings.HasPrefix(line, "{") {
		t.Fatalf("line protocol stat: %q %v", line, err)
	}

	// Every trickling connection is refused or cut off: none lasts past
	// the 10 s body timeout (plus slack for a loaded machine).
	var refused, cut int
	var slowest time.Duration
	for _, h := range conns {
		_ = h.c.SetReadDeadline(h.sent.Add(25 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(h.c), nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				refused++
				continue
			}
			_, err = h.c.Read(make([]byte, 1)) // then the close
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a trickling connection was still open %v after its headers", time.Since(h.sent).Round(time.Second))
		}
		cut++
		slowest = max(slowest, time.Since(h.sent))
	}
	t.Logf("%d refused with 503, %d cut off (the last %v after its headers)", refused, cut, slowest.Round(100*time.Millisecond))
	// The dispatcher's total here is 512 (1,024 files less the line
	// protocol's 256 and the fleet's reserve of 256): an eighth per address.
	if refused < n-64-dialErr {
		t.Fatalf("only %d of %d connections from one address refused; the per-address cap is 64", refused, len(conns))
	}
}

// wsStatus tries a WebSocket upgrade of url with origin ("": none) and
// returns the HTTP status (101 when it succeeded).
func wsStatus(t *testing.T, url, origin string) int {
	t.Helper()
	code, err := wsconntest.UpgradeStatus(url, origin)
	if err != nil {
		t.Fatalf("upgrade %s: %v", url, err)
	}
	return code
}

// TestOriginsReachEveryProcess: --allowed-origins travels to every
// process arena runs; each WebSocket (/v1/play, chat, map, fight) refuses a
// page of another site with 403 and takes one of the allowed origin.
func TestOriginsReachEveryProcess(t *testing.T) {
	chat := freePort(t)
	a := startArena(t, "up", "--chat-port", strconv.Itoa(chat), "--credentials", t.TempDir()+"/creds.json",
		"--allowed-origins", "https://game.example", "--bots", "2")
	waitReady(t, a, "fight", "map", "chat")

	_, tok := a.login(t, "origin")
	var ans enterAns
	waitfor.Cond(t, "enter town", func() bool { return api(t, a, "GET", "/v1/maps/town/enter", tok, nil, &ans) == 200 })
	// A match with the two bots, for a fight socket.
	ctx := ctxT(t, 30*time.Second)
	play, err := wsconn.DialClient(ctx, "ws://"+a.HTTP+"/v1/play?token="+url.QueryEscape(tok), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer play.Close(wsconn.CloseNormal, "")
	_ = play.SendJSON(map[string]string{"type": "queue"})
	var m matchMsg
	if err := play.RecvType(ctx, "match", &m); err != nil {
		t.Fatal(err)
	}
	sockets := map[string]string{
		"play":  "ws://" + a.HTTP + "/v1/play?token=" + url.QueryEscape(tok),
		"chat":  "ws://127.0.0.1:" + strconv.Itoa(chat) + "/ws?token=" + url.QueryEscape(tok),
		"map":   ans.Addr + "?ticket=" + url.QueryEscape(ans.Ticket),
		"fight": m.Fight + "?ticket=" + url.QueryEscape(m.Ticket),
	}
	for name, u := range sockets {
		if got := wsStatus(t, u, "https://evil.example"); got != http.StatusForbidden {
			t.Errorf("%s from another site: %d, want 403", name, got)
		}
	}
	for name, u := range sockets {
		if name == "map" {
			continue // a map ticket is good once; the refused tries above did not use it
		}
		if got := wsStatus(t, u, "https://game.example"); got != http.StatusSwitchingProtocols {
			t.Errorf("%s from the allowed origin: %d, want 101", name, got)
		}
	}
	if got := wsStatus(t, sockets["map"], "https://game.example"); got != http.StatusSwitchingProtocols {
		t.Errorf("map from the allowed origin: %d, want 101", got)
	}
}
