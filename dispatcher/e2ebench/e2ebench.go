// Package e2ebench is the load generator behind `arena bench e2e`: many
// players each log in, open /v1/play, queue, receive their match, join the
// fight server with the room ticket and wait until they have seen every
// member's create_player. It reports the time from queue to in-room.
package e2ebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
)

// Config configures a run.
type Config struct {
	// HTTP is the dispatcher's base URL (http://host:port).
	HTTP string
	// OperatorToken lets the generator log its players in without the
	// per-address login limit (they are logged in as bots).
	OperatorToken string
	Players       int
	// RoomSize is the players per room (default 3).
	RoomSize int
	// Connect bounds the players connecting at once (default 256).
	Connect int
	// Timeout bounds the whole run (default 2m).
	Timeout time.Duration
}

// Result is the run's figures. Latencies are in milliseconds.
type Result struct {
	Players       int     `json:"players"`
	InRoom        int64   `json:"in_room"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	Seconds       float64 `json:"seconds"`
	QueueToMatP50 float64 `json:"queue_to_match_p50_ms"`
	QueueToMatP99 float64 `json:"queue_to_match_p99_ms"`
	P50ms         float64 `json:"p50_ms"` // queue to in-room (every create_player seen)
	P99ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Rooms         int     `json:"rooms"`
}

// Run drives cfg.Players players through the whole flow.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.RoomSize <= 0 {
		cfg.RoomSize = 3
	}
	if cfg.Connect <= 0 {
		cfg.Connect = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Players <= 0 {
		return Result{}, fmt.Errorf("bench e2e: --players must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	u, err := url.Parse(cfg.HTTP)
	if err != nil {
		return Result{}, fmt.Errorf("bench e2e: %w", err)
	}
	wsBase := "ws://" + u.Host
	var (
		res      = Result{Players: cfg.Players}
		mu       sync.Mutex
		toMatch  []float64
		toRoom   []float64
		rooms    = map[string]bool{}
		errs     atomic.Int64
		firstErr atomic.Value
		inRoom   atomic.Int64
	)
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	// Phase 1: log in and connect everyone (bounded concurrency).
	type player struct {
		token string
		play  *wsconn.Client
	}
	players := make([]*player, cfg.Players)
	sem := make(chan struct{}, cfg.Connect)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range players {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			tok, err := login(ctx, client, cfg, i)
			if err != nil {
				fail(err)
				return
			}
			cl, err := wsconn.DialClient(ctx, wsBase+"/v1/play?token="+url.QueryEscape(tok), 64)
			if err != nil {
				fail(err)
				return
			}
			if err := cl.RecvType(ctx, "welcome", nil); err != nil {
				fail(err)
				cl.Close(wsconn.CloseNormal, "")
				return
			}
			players[i] = &player{token: tok, play: cl}
		}(i)
	}
	wg.Wait()
	// Phase 2: everyone queues at once; measure queue -> match -> in room.
	start := time.Now()
	for _, p := range players {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func(p *player) {
			defer wg.Done()
			defer p.play.Close(wsconn.CloseNormal, "")
			t0 := time.Now()
			if err := p.play.SendJSON(map[string]string{"type": "queue"}); err != nil {
				fail(err)
				return
			}
			var m struct {
				Room, Fight, Ticket string
				Players             []json.RawMessage
			}
			if err := p.play.RecvType(ctx, "match", &m); err != nil {
				fail(fmt.Errorf("waiting for match: %w", err))
				return
			}
			tm := time.Since(t0)
			fc, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 64)
			if err != nil {
				fail(err)
				return
			}
			defer fc.Close(wsconn.CloseNormal, "")
			seen := map[string]bool{}
			for len(seen) < len(m.Players) {
				var cp struct{ UUID string }
				if err := fc.RecvType(ctx, "create_player", &cp); err != nil {
					fail(fmt.Errorf("waiting for create_player: %w", err))
					return
				}
				seen[cp.UUID] = true
			}
			tr := time.Since(t0)
			inRoom.Add(1)
			mu.Lock()
			toMatch = append(toMatch, float64(tm.Microseconds())/1000)
			toRoom = append(toRoom, float64(tr.Microseconds())/1000)
			rooms[m.Room] = true
			mu.Unlock()
			// Stay until the whole run is in, so rooms stay full.
			<-ctx.Done()
		}(p)
	}
	// Wait until every connected player is in a room (or the timeout).
	connected := 0
	for _, p := range players {
		if p != nil {
			connected++
		}
	}
	for ctx.Err() == nil && int(inRoom.Load()+errs.Load()) < cfg.Players && int(inRoom.Load()) < connected-connected%cfg.RoomSize {
		time.Sleep(10 * time.Millisecond)
	}
	res.Seconds = time.Since(start).Seconds()
	cancel()
	wg.Wait()
	res.InRoom, res.Errors, res.Rooms = inRoom.Load(), errs.Load(), len(rooms)
	if s, ok := firstErr.Load().(string); ok && res.InRoom < int64(cfg.Players) {
		res.FirstError = s
	}
	res.QueueToMatP50, res.QueueToMatP99, _ = quantiles(toMatch)
	res.P50ms, res.P99ms, res.MaxMs = quantiles(toRoom)
	return res, nil
}

func quantiles(v []float64) (p50, p99, max float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(v)
	q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
	return q(0.5), q(0.99), v[len(v)-1]
}

func login(ctx context.Context, c *http.Client, cfg Config, i int) (string, error) {
	body, _ := json.Marshal(map[string]any{"username": fmt.Sprintf("bench-%d", i), "bot": cfg.OperatorToken != ""})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.HTTP, "/")+"/v1/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.OperatorToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.OperatorToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	var lr struct{ Token string }
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: http %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return lr.Token, nil
}
