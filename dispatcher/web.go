package dispatcher

import (
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/bots"
	"github.com/arena-game/arena/web"
)

// BotManager is what GET and POST /v1/bots read and steer: the bot players
// kept queueing and playing (a *bots.Fleet in `arena up`).
type BotManager interface {
	// SetCount changes how many bots play (0..bots.MaxBots); errors wrap
	// bots.ErrBadCount or bots.ErrStopped.
	SetCount(n int) error
	// Status is the current count, states and bots.
	Status() bots.Status
}

// botManagers holds each dispatcher's BotManager (set by SetBots). It is
// kept beside the Dispatcher rather than in it so the web part stays in
// this file.
var botManagers sync.Map // *Dispatcher -> BotManager

// SetBots attaches the bot manager that /v1/bots steers; nil detaches it.
// If m is also a prometheus.Collector it is registered on the dispatcher's
// /metrics. Call it before or after Run; until then /v1/bots answers 503
// bots_unavailable.
func (d *Dispatcher) SetBots(m BotManager) {
	if m == nil {
		botManagers.Delete(d)
		return
	}
	if old, ok := botManagers.Swap(d, m); ok {
		if c, ok := old.(prometheus.Collector); ok {
			d.metrics.Registry.Unregister(c)
		}
	}
	if c, ok := m.(prometheus.Collector); ok {
		_ = d.metrics.Registry.Register(c)
	}
}

func (d *Dispatcher) botManager() BotManager {
	if m, ok := botManagers.Load(d); ok {
		return m.(BotManager)
	}
	return nil
}

// webRoutes registers the play page (GET /), the dashboard
// (GET /dashboard), their static files (GET /static/...) and the bot
// control: GET /v1/bots (status, public) and POST /v1/bots {"count": N}
// (operator token). docs/web.md describes them.
func (d *Dispatcher) webRoutes() {
	web.NewPages().Register(d.mux) // /, /dashboard, /turns (the turns game's page), /static/...
	d.mux.HandleFunc("GET /v1/bots", d.handleBotsStatus)
	d.mux.HandleFunc("POST /v1/bots", d.operator(d.handleBotsSet))
}

// handleBotsStatus serves GET /v1/bots: the bot manager's Status, or 503
// bots_unavailable when this dispatcher runs none.
func (d *Dispatcher) handleBotsStatus(w http.ResponseWriter, r *http.Request) {
	m := d.botManager()
	if m == nil {
		writeError(w, http.StatusServiceUnavailable, "bots_unavailable", "this dispatcher runs no bots (arena up runs them)")
		return
	}
	writeJSON(w, http.StatusOK, m.Status())
}

// handleBotsSet serves POST /v1/bots {"count": N} (operator token):
// 200 with the new Status; 400 bad_request or bad_count; 503
// bots_unavailable.
func (d *Dispatcher) handleBotsSet(w http.ResponseWriter, r *http.Request) {
	m := d.botManager()
	if m == nil {
		writeError(w, http.StatusServiceUnavailable, "bots_unavailable", "this dispatcher runs no bots (arena up runs them)")
		return
	}
	var body struct {
		Count *int `json:"count"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if body.Count == nil {
		writeError(w, http.StatusBadRequest, "bad_count", `"count" is required`)
		return
	}
	if err := m.SetCount(*body.Count); err != nil {
		code, status := "bad_count", http.StatusBadRequest
		if !errors.Is(err, bots.ErrBadCount) {
			code, status = "bots_unavailable", http.StatusServiceUnavailable
		}
		writeError(w, status, code, err.Error())
		return
	}
	d.log.Info("bot count changed", "count", *body.Count, "by", "http")
	writeJSON(w, http.StatusOK, m.Status())
}
