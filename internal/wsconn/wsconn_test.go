package wsconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

type echo struct{}

func (echo) OnOpen(c *Conn)                 { _ = c.Send([]byte(`{"type":"hello"}`)) }
func (echo) OnMessage(c *Conn, data []byte) { _ = c.Send(append([]byte(nil), data...)) }
func (echo) OnClose(*Conn, error)           {}

func newEcho(t *testing.T, opt Options) string {
	t.Helper()
	srv := NewServer(echo{}, opt)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = srv.Upgrade(w, r, nil)
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

func TestEchoAndRecvType(t *testing.T) {
	url := newEcho(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	cl, err := DialClient(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(CloseNormal, "")
	if err := cl.RecvType(ctx, "hello", nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.SendJSON(map[string]string{"type": "x", "v": "1"}); err != nil {
		t.Fatal(err)
	}
	var got struct{ V string }
	if err := cl.RecvType(ctx, "x", &got); err != nil || got.V != "1" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestOversizedMessageCloses(t *testing.T) {
	url := newEcho(t, Options{MaxMessage: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	cl, err := DialClient(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = cl.Send([]byte(`{"type":"x","pad":"` + strings.Repeat("a", 4096) + `"}`))
	select {
	case <-cl.Done():
		if code := CloseCode(cl.CloseErr()); code != CloseTooBig {
			t.Fatalf("close code %d (%v), want %d", code, cl.CloseErr(), CloseTooBig)
		}
	case <-ctx.Done():
		t.Fatal("server did not close an oversized message")
	}
}

func TestIdleTimeoutCloses(t *testing.T) {
	url := newEcho(t, Options{IdleTimeout: 200 * time.Millisecond, PingInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	cl, err := DialClient(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-ctx.Done():
		t.Fatal("idle connection was not closed")
	}
}

// batcher answers every message with a SendNow batch of three messages,
// or of SendQueue+1 messages when told "flood".
type batcher struct{ queue int }

func (batcher) OnOpen(*Conn) {}
func (b batcher) OnMessage(c *Conn, data []byte) {
	n := 3
	if string(data) == "flood" {
		n = b.queue + 1
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = []byte(`{"type":"m","i":` + strconv.Itoa(i) + `,"of":"` + string(data) + `"}`)
	}
	_ = c.SendNow(msgs...)
	for i := range msgs {
		msgs[i][2] = 'X' // the batch was copied: this must not show
	}
}
func (batcher) OnClose(*Conn, error) {}

func TestSendNowBatchInOrderAndSlowConsumer(t *testing.T) {
	srv := NewServer(batcher{queue: 4}, Options{SendQueue: 4})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = srv.Upgrade(w, r, nil)
	}))
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	cl, err := DialClient(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		tag := strconv.Itoa(round)
		_ = cl.Send([]byte(tag))
		for i := 0; i < 3; i++ {
			b, err := cl.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"type":"m","i":` + strconv.Itoa(i) + `,"of":"` + tag + `"}`
			if string(b) != want {
				t.Fatalf("round %d message %d: %s, want %s", round, i, b, want)
			}
		}
	}
	// A batch bigger than the queue closes the connection (1013).
	_ = cl.Send([]byte("flood"))
	select {
	case <-cl.Done():
		if code := CloseCode(cl.CloseErr()); code != CloseTryAgain {
			t.Fatalf("close code %d (%v), want %d", code, cl.CloseErr(), CloseTryAgain)
		}
	case <-ctx.Done():
		t.Fatal("an over-long batch did not close the connection")
	}
}
