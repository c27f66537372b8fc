package wsconn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsconn/wsconntest"
)

type quiet struct{}

func (quiet) OnOpen(*wsconn.Conn)            {}
func (quiet) OnMessage(*wsconn.Conn, []byte) {}
func (quiet) OnClose(*wsconn.Conn, error)    {}

// TestPingFloodIsLimited: a server whose handler does not count pings
// itself still answers at most wsconn's default ping rate, and closes a
// connection that keeps flooding with 1008.
func TestPingFloodIsLimited(t *testing.T) {
	srv := wsconn.NewServer(quiet{}, wsconn.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = srv.Upgrade(w, r, nil) }))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := wsconntest.PingFlood(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, 20000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%+v in %v", res, took)
	if most := int64(wsconn.DefaultPingBurst + wsconn.DefaultPingRate*took.Seconds() + 1); res.Pongs > most {
		t.Fatalf("%d of %d pings answered; at most %d allowed", res.Pongs, res.Sent, most)
	}
	if !res.Closed || res.CloseCode != wsconn.ClosePolicy {
		t.Fatalf("flooding connection: closed %v code %d, want 1008", res.Closed, res.CloseCode)
	}
}

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://game.example", "http://tools.example:8080/"}
	for _, tc := range []struct {
		host, origin string
		want         bool
	}{
		{"arena.example:8080", "", true},
		{"arena.example:8080", "http://arena.example:8080", true},
		{"arena.example:7600", "https://arena.example:8080", true}, // the pages' host, a socket on another port
		{"ARENA.example:7600", "http://arena.EXAMPLE", true},
		{"arena.example:7600", "http://localhost:5173", true},
		{"arena.example:7600", "http://app.localhost", true},
		{"arena.example:7600", "http://127.0.0.7:1", true},
		{"arena.example:7600", "http://[::1]:8080", true},
		{"arena.example:7600", "https://game.example", true},
		{"arena.example:7600", "http://tools.example:8080", true},
		{"arena.example:7600", "http://tools.example", false},
		{"arena.example:7600", "http://game.example", false},
		{"arena.example:7600", "https://evil.example", false},
		{"arena.example:7600", "https://arena.example.evil.example", false},
		{"arena.example:7600", "null", false},
		{"arena.example:7600", "file://", false},
		{"arena.example:7600", "http://arena.example/path", false},
		{"arena.example:7600", "http://user@arena.example", false},
		{"[2001:db8::1]:7600", "http://[2001:db8::1]:8080", true},
	} {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := wsconn.OriginAllowed(r, allowed); got != tc.want {
			t.Errorf("host %s origin %q: %v, want %v", tc.host, tc.origin, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Origin", "https://anyone.example")
	if !wsconn.OriginAllowed(r, []string{"*"}) {
		t.Error("\"*\" does not allow every origin")
	}
}
