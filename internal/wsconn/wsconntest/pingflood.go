// Package wsconntest has test helpers for arena's WebSocket servers.
package wsconntest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// FloodResult is what a ping flood saw.
type FloodResult struct {
	Sent      int      // ping frames written
	Pongs     int64    // pong frames received
	Closed    bool     // the server closed the connection
	CloseCode uint16   // its close code (0: none seen)
	Texts     []string // text messages received
}

type floodHandler struct {
	gws.BuiltinEventHandler
	pongs  atomic.Int64
	code   atomic.Uint32
	closed chan struct{}
	mu     sync.Mutex
	texts  []string
}

func (h *floodHandler) OnPong(*gws.Conn, []byte) { h.pongs.Add(1) }

func (h *floodHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.mu.Lock()
	h.texts = append(h.texts, m.Data.String())
	h.mu.Unlock()
}

func (h *floodHandler) OnClose(_ *gws.Conn, err error) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		h.code.Store(uint32(ce.Code))
	}
	close(h.closed)
}

// PingFlood connects to url (with header, e.g. an Origin) and writes n
// ping frames as fast as it can, then the text messages after, then waits
// until the server closes the connection or settle passes with no more
// pongs or messages arriving, and reports.
func PingFlood(ctx context.Context, url string, header http.Header, n int, settle time.Duration, after ...string) (FloodResult, error) {
	h := &floodHandler{closed: make(chan struct{})}
	c, _, err := gws.NewClient(h, &gws.ClientOption{Addr: url, RequestHeader: header})
	if err != nil {
		return FloodResult{}, err
	}
	go c.ReadLoop()
	res := FloodResult{}
	for ; res.Sent < n; res.Sent++ {
		if c.WritePing(nil) != nil {
			break
		}
		select {
		case <-h.closed:
			n = res.Sent // stop writing
		default:
		}
	}
	for _, m := range after {
		_ = c.WriteString(m)
	}
	last := int64(-1)
	lastTexts := -1
	for {
		t := time.NewTimer(settle)
		select {
		case <-h.closed:
			t.Stop()
			res.Closed = true
		case <-ctx.Done():
			t.Stop()
			c.WriteClose(1000, nil)
			return res, ctx.Err()
		case <-t.C:
		}
		p := h.pongs.Load()
		h.mu.Lock()
		nt := len(h.texts)
		h.mu.Unlock()
		if res.Closed || p == last && nt == lastTexts {
			h.mu.Lock()
			res.Texts = append([]string(nil), h.texts...)
			h.mu.Unlock()
			res.Pongs, res.CloseCode = p, uint16(h.code.Load())
			if !res.Closed {
				c.WriteClose(1000, nil)
			}
			return res, nil
		}
		last, lastTexts = p, nt
	}
}

// UpgradeStatus tries a WebSocket upgrade of url as a browser page of
// origin would ("" sends no Origin) and returns the HTTP status: 101 when
// the upgrade succeeded (the connection is then closed), else the refusal's.
func UpgradeStatus(url, origin string) (int, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := gws.NewClient(gws.BuiltinEventHandler{}, &gws.ClientOption{Addr: url, RequestHeader: h, HandshakeTimeout: 5 * time.Second})
	if err == nil {
		_ = c.WriteClose(1000, nil)
		return http.StatusSwitchingProtocols, nil
	}
	if resp == nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
