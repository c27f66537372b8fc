package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/auth"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 16 << 10

// routes registers the HTTP API: the fleet's and operators' routes here,
// the players' from the other files (playRoutes, identityRoutes, ...).
func (d *Dispatcher) routes() {
	d.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if why := d.health(r.Context()); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("unhealthy: " + why + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	d.mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{d.metrics.Registry}, promhttp.HandlerOpts{}))
	d.mux.HandleFunc("GET /v1/fleet", d.handleFleet)
	d.mux.HandleFunc("POST /v1/fleet/maxnum", d.operator(d.handleMaxNum))
	d.mux.HandleFunc("POST /v1/fleet/{port}/drain", d.operator(d.handleDrain))
	d.mux.HandleFunc("POST /v1/hosts/{name}/drain", d.operator(d.handleDrainHost))
	d.mux.HandleFunc("GET /v1/fleet/events", d.handleFleetEvents)
	d.playRoutes()
	d.profileRoutes()
	d.playerRoutes()
	d.webRoutes()
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// APIError is the body of every HTTP error: {"type":"error","code","message"}.
type APIError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, APIError{Type: "error", Code: code, Message: msg})
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// operator wraps h so only requests with the operator token pass.
func (d *Dispatcher) operator(h http.HandlerFunc) http.HandlerFunc {
	return requireBearer(d.cfg.OperatorToken, "operator", h)
}

// backend wraps h so only requests with the backend token pass.
func (d *Dispatcher) backend(h http.HandlerFunc) http.HandlerFunc {
	return requireBearer(d.cfg.BackendToken, "backend", h)
}

// requireBearer wraps h so only requests whose "Authorization: Bearer"
// equals secret pass; others get 401. An empty secret lets nobody in.
func requireBearer(secret, what string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !auth.EqualSecret(bearer(r), secret) {
			writeError(w, http.StatusUnauthorized, "unauthorized", what+" token required")
			return
		}
		h(w, r)
	}
}

// decodeJSON decodes a size-limited JSON body into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body over %d bytes", maxJSONBody)
		}
		return fmt.Errorf("bad json: %v", err)
	}
	return nil
}

// handleFleet serves GET /v1/fleet: the process table as JSON.
func (d *Dispatcher) handleFleet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.fleet.Table())
}

// handleMaxNum serves POST /v1/fleet/maxnum {"maxnum": N} (operator).
func (d *Dispatcher) handleMaxNum(w http.ResponseWriter, r *http.Request) {
	var body struct {
		MaxNum int `json:"maxnum"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if body.MaxNum < 1 || body.MaxNum > 1_000_000 {
		writeError(w, http.StatusBadRequest, "bad_maxnum", "maxnum must be 1..1000000")
		return
	}
	d.fleet.SetMaxNum(body.MaxNum)
	d.log.Info("maxnum changed", "maxnum", body.MaxNum, "by", "http")
	writeJSON(w, http.StatusOK, map[string]any{"type": "ok", "maxnum": body.MaxNum})
}

// handleDrain serves POST /v1/fleet/{port}/drain (operator): {port} is
// PORT (a process on the dispatcher's machine) or HOST:PORT.
func (d *Dispatcher) handleDrain(w http.ResponseWriter, r *http.Request) {
	k, ok := d.processKey(r.PathValue("port"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_port", "want PORT or HOST:PORT")
		return
	}
	if err := d.fleet.Drain(k, 30*time.Second); err != nil {
		writeError(w, http.StatusNotFound, "unknown_port", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"type": "ok", "host": k.Host, "port": k.Port, "state": hostctl.Draining})
}

// processKey resolves PORT (the dispatcher's machine) or HOST:PORT (a
// host's name or advertised address) to a process of the table.
func (d *Dispatcher) processKey(s string) (fleet.Key, bool) {
	h, ps, err := net.SplitHostPort(s)
	if err != nil {
		h, ps = "", s
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return fleet.Key{}, false
	}
	for _, p := range d.fleet.Snapshot() {
		if p.Port == port && (h == "" && p.Local || h != "" && (p.Host == h || p.Advertise == h)) {
			return p.Key(), true
		}
	}
	return fleet.Key{Host: h, Port: port}, true
}

// handleDrainHost serves POST /v1/hosts/{name}/drain (operator), with an
// optional {"deadline_s": N} (default 600): the host takes no new work and
// exits once its processes are idle or at the deadline.
func (d *Dispatcher) handleDrainHost(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeadlineS int `json:"deadline_s"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
	}
	if body.DeadlineS <= 0 {
		body.DeadlineS = 600
	}
	name := r.PathValue("name")
	if err := d.fleet.DrainHost(name, time.Duration(body.DeadlineS)*time.Second); err != nil {
		writeError(w, http.StatusNotFound, "unknown_host", err.Error())
		return
	}
	d.log.Info("host drain requested", "host", name, "deadline_s", body.DeadlineS, "by", "http")
	writeJSON(w, http.StatusOK, map[string]any{"type": "ok", "host": name, "state": hostctl.HostDraining, "deadline_s": body.DeadlineS})
}

// handleFleetEvents streams the table and fleet events as server-sent
// events: "table" (the JSON table, on every change, at most 4 per second),
// "fleet" (spawn, exit, drain, maxnum) and "stats" (queue statistics,
// every second).
//
// The stream outlives the server's write timeout: each event has its own
// 10 s write deadline instead, so a reader that stops reading is dropped.
func (d *Dispatcher) handleFleetEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	events, cancel := d.fleet.Subscribe()
	defer cancel()
	send := func(name string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return true
		}
		if rc.SetWriteDeadline(time.Now().Add(10*time.Second)) != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	ticks := 0
	for {
		if v := d.fleet.Version(); v != last {
			last = v
			if !send("table", d.fleet.Table()) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case ev := <-events:
			if !send("fleet", ev) {
				return
			}
		case <-tick.C:
			if ticks%4 == 0 && !send("stats", d.mm.Stats()) {
				return
			}
			ticks++
		}
	}
}
