package bots

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
)

// Errors a bot's calls to the dispatcher return (wrapped).
var (
	// ErrUnauthorized: the dispatcher refused a token (HTTP 401 or an
	// unauthorized/expired error): the bot logs in again.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRefused: the dispatcher answered with an error status or message.
	ErrRefused = errors.New("refused")
)

// identity is a logged-in bot.
type identity struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Photo    string `json:"photo"`
	Score    int    `json:"score"`
	Token    string `json:"token"`
	expires  time.Time
}

// apiError is the dispatcher's error body.
type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// client talks to one dispatcher's player API (docs/PROTOCOL.md).
type client struct {
	base     *url.URL // http://host:port
	operator string
	http     *http.Client
}

func newClient(baseURL, operator string) (*client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bots: base url %q: want http://host:port", baseURL)
	}
	return &client{base: u, operator: operator, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// login asks POST /v1/login for a bot identity: {"username","photo","bot":true}
// with the operator token as the bearer.
func (c *client) login(ctx context.Context, name, photo string) (identity, error) {
	var id identity
	body, _ := json.Marshal(map[string]any{"username": name, "photo": photo, "bot": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/v1/login", bytes.NewReader(body))
	if err != nil {
		return id, fmt.Errorf("login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.operator != "" {
		req.Header.Set("Authorization", "Bearer "+c.operator)
	}
	if err := c.do(req, &id); err != nil {
		return id, fmt.Errorf("login: %w", err)
	}
	if id.Token == "" || id.UUID == "" {
		return id, fmt.Errorf("login: %w: answer has no uuid or token", ErrRefused)
	}
	id.expires = tokenExpiry(id.Token)
	return id, nil
}

// me checks a player token with GET /v1/me; ErrUnauthorized means the bot
// must log in again.
func (c *client) me(ctx context.Context, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/me", nil)
	if err != nil {
		return fmt.Errorf("me: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if err := c.do(req, nil); err != nil {
		return fmt.Errorf("me: %w", err)
	}
	return nil
}

func (c *client) do(req *http.Request, v any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%w: %s %s", ErrUnauthorized, e.Code, clip(e.Message, 120))
		}
		return fmt.Errorf("%w: http %d %s %s", ErrRefused, resp.StatusCode, e.Code, clip(e.Message, 120))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: bad json answer: %v", ErrRefused, err)
	}
	return nil
}

// playURL is ws://host:port/v1/play?token=TOKEN.
func (c *client) playURL(token string) string {
	u := *c.base
	u.Scheme = "ws"
	if c.base.Scheme == "https" {
		u.Scheme = "wss"
	}
	u.Path = "/v1/play"
	u.RawQuery = url.Values{"token": {token}}.Encode()
	return u.String()
}

// tokenExpiry reads the "exp" claim of an arena token without verifying
// it (the bot only wants to know when to log in again; servers verify).
// It returns the zero time when the token cannot be read.
func tokenExpiry(token string) time.Time {
	p, _, ok := strings.Cut(token, ".")
	if !ok {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(c.Exp, 0)
}

// socket is a WebSocket connection whose messages arrive on a channel, so
// a bot can select on them, its timers and its context together.
type socket struct {
	conn   *wsconn.Conn
	in     chan []byte
	closed chan struct{}
	err    error
}

type socketHandler struct{ s *socket }

func (h socketHandler) OnOpen(*wsconn.Conn) {}
func (h socketHandler) OnMessage(_ *wsconn.Conn, data []byte) {
	b := append([]byte(nil), data...)
	select {
	case h.s.in <- b:
	case <-h.s.closed:
	}
}
func (h socketHandler) OnClose(_ *wsconn.Conn, err error) {
	h.s.err = err
	close(h.s.closed)
}

// dial opens a socket to rawURL (which may carry a token or ticket in its
// query; errors never include it).
func dial(ctx context.Context, rawURL string) (*socket, error) {
	s := &socket{in: make(chan []byte, 64), closed: make(chan struct{})}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := wsconn.Dial(dctx, rawURL, socketHandler{s}, wsconn.Options{IdleTimeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	s.conn = c
	return s, nil
}

func (s *socket) send(b []byte) error { return s.conn.Send(b) }

func (s *socket) messages() <-chan []byte { return s.in }

func (s *socket) done() <-chan struct{} { return s.closed }

// closeErr is why the socket closed; it is set before done is closed.
func (s *socket) closeErr() error { return s.err }

func (s *socket) close() { s.conn.Close(wsconn.CloseNormal, "bye") }
