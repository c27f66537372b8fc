package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
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
	if refused < n-256-dialErr {
		t.Fatalf("only %d of %d connections from one address refused; the per-address cap is 256", refused, len(conns))
	}
}
