package dispatcher

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/arena-game/arena/bots"
)

// webTestDispatcher is a dispatcher with only what webRoutes uses.
func webTestDispatcher(t *testing.T) *Dispatcher {
	t.Helper()
	d := &Dispatcher{
		cfg:     Config{OperatorToken: "op-secret"},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: NewMetrics(nil),
		mux:     http.NewServeMux(),
	}
	d.webRoutes()
	t.Cleanup(func() { d.SetBots(nil) })
	return d
}

// webFakeBots is a BotManager that records the counts it is given.
type webFakeBots struct {
	mu    sync.Mutex
	count int
	err   error
}

func (b *webFakeBots) SetCount(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || n > bots.MaxBots {
		return fmt.Errorf("set bot count %d: %w", n, bots.ErrBadCount)
	}
	if b.err != nil {
		return b.err
	}
	b.count = n
	return nil
}

func (b *webFakeBots) Status() bots.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bots.Status{Target: b.count, Running: b.count, States: map[string]int{"queued": b.count}}
}

func webDo(t *testing.T, d *Dispatcher, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	d.mux.ServeHTTP(rec, req)
	var m map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: bad json %q", method, url, rec.Body.String())
		}
	}
	return rec.Code, m
}

func TestWebRoutesServePages(t *testing.T) {
	d := webTestDispatcher(t)
	for _, url := range []string{"/", "/dashboard", "/static/js/play.js", "/static/css/style.css"} {
		req := httptest.NewRequest("GET", url, nil)
		rec := httptest.NewRecorder()
		d.mux.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d", url, rec.Code)
		}
	}
	// "/" is the page only: other paths stay 404 for the API's clients.
	if code, _ := webDo(t, d, "GET", "/v1/nothing", "", ""); code != 404 {
		t.Errorf("GET /v1/nothing: %d", code)
	}
}

func TestWebBotsUnavailableWithoutManager(t *testing.T) {
	d := webTestDispatcher(t)
	code, m := webDo(t, d, "GET", "/v1/bots", "", "")
	if code != 503 || m["code"] != "bots_unavailable" || m["type"] != "error" {
		t.Errorf("GET: %d %v", code, m)
	}
	code, m = webDo(t, d, "POST", "/v1/bots", "op-secret", `{"count":2}`)
	if code != 503 || m["code"] != "bots_unavailable" {
		t.Errorf("POST: %d %v", code, m)
	}
}

func TestWebBotsSetAndStatus(t *testing.T) {
	d := webTestDispatcher(t)
	fb := &webFakeBots{}
	d.SetBots(fb)
	code, m := webDo(t, d, "POST", "/v1/bots", "op-secret", `{"count":4}`)
	if code != 200 || m["target"] != float64(4) {
		t.Fatalf("POST: %d %v", code, m)
	}
	code, m = webDo(t, d, "GET", "/v1/bots", "", "")
	if code != 200 || m["running"] != float64(4) {
		t.Fatalf("GET: %d %v", code, m)
	}
	code, _ = webDo(t, d, "POST", "/v1/bots", "op-secret", `{"count":0}`)
	if code != 200 || fb.count != 0 {
		t.Errorf("count 0: %d, count %d", code, fb.count)
	}
}

func TestWebBotsBadInput(t *testing.T) {
	d := webTestDispatcher(t)
	fb := &webFakeBots{count: 1}
	d.SetBots(fb)
	for _, c := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no token", "", `{"count":3}`, 401, "unauthorized"},
		{"wrong token", "player-token", `{"count":3}`, 401, "unauthorized"},
		{"not json", "op-secret", `count=3`, 400, "bad_request"},
		{"empty body", "op-secret", ``, 400, "bad_request"},
		{"no count", "op-secret", `{}`, 400, "bad_count"},
		{"string count", "op-secret", `{"count":"3"}`, 400, "bad_request"},
		{"fraction", "op-secret", `{"count":1.5}`, 400, "bad_request"},
		{"negative", "op-secret", `{"count":-1}`, 400, "bad_count"},
		{"absurd", "op-secret", `{"count":1000000000}`, 400, "bad_count"},
		{"huge body", "op-secret", `{"count":1,"pad":"` + strings.Repeat("x", 20<<10) + `"}`, 400, "bad_request"},
	} {
		code, m := webDo(t, d, "POST", "/v1/bots", c.token, c.body)
		if code != c.status || m["code"] != c.code || m["type"] != "error" {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, m, c.status, c.code)
		}
	}
	if fb.count != 1 {
		t.Errorf("a refused request changed the count to %d", fb.count)
	}
	// A manager that has stopped answers 503.
	fb.err = fmt.Errorf("set bot count: %w", bots.ErrStopped)
	if code, m := webDo(t, d, "POST", "/v1/bots", "op-secret", `{"count":2}`); code != 503 || m["code"] != "bots_unavailable" {
		t.Errorf("stopped: %d %v", code, m)
	}
}

func TestWebBotsMetricsRegistered(t *testing.T) {
	d := webTestDispatcher(t)
	f, err := bots.New(bots.Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	d.SetBots(f)
	d.SetBots(f) // again: replaces, no duplicate registration panic
	mfs, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "arena_bots"
	}
	if !found {
		t.Error("arena_bots not on the dispatcher's registry")
	}
}
