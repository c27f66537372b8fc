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
