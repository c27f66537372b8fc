package wsconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lxzan/gws"
)

// Dial opens a client connection to url (ws://host:port/path?query) and
// serves it on its own goroutine, delivering events to h. Bots, load
// generators and tests use it.
func Dial(ctx context.Context, url string, h Handler, opt Options) (*Conn, error) {
	opt = opt.withDefaults()
	if opt.PingInterval > 0 {
		opt.PingInterval = -1 // clients answer the server's pings; they need not ping
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	var c *Conn
	ws, resp, err := gws.NewClient(&bridge{h: h, opt: opt}, &gws.ClientOption{
		Addr:               url,
		ReadMaxPayloadSize: opt.MaxMessage,
		ReadBufferSize:     opt.ReadBuffer,
		HandshakeTimeout:   timeout,
		Logger:             quietLogger{},
		NewDialer: func() (gws.Dialer, error) {
			return &net.Dialer{Timeout: timeout}, nil
		},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: http %d: %w", RedactURL(url), resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", RedactURL(url), err)
	}
	c = &Conn{ws: ws, opt: opt}
	ws.Session().Store("c", c)
	go ws.ReadLoop()
	return c, nil
}

// RedactURL drops the query (which may hold a token or ticket) from url,
// for error text and logs: "ws://h:1/ws?ticket=T" becomes "ws://h:1/ws?…".
// A url without a query is returned as it is.
func RedactURL(url string) string {
	for i := 0; i < len(url); i++ {
		if url[i] == '?' {
			return url[:i] + "?…"
		}
	}
	return url
}

// Client is a WebSocket client that delivers incoming messages on a
// channel, for tests, bots and load generators that read in order.
type Client struct {
	*Conn
	in     chan []byte
	closed chan struct{}
	err    error
}

type chanHandler struct{ cl *Client }

func (h chanHandler) OnOpen(*Conn) {}
func (h chanHandler) OnMessage(_ *Conn, data []byte) {
	b := append([]byte(nil), data...)
	select {
	case h.cl.in <- b:
	case <-h.cl.closed:
	}
}
func (h chanHandler) OnClose(_ *Conn, err error) {
	h.cl.err = err
	close(h.cl.closed)
}

// DialClient dials url and returns a Client buffering up to buf messages
// (default 1024); when the buffer is full the read goroutine waits.
func DialClient(ctx context.Context, url string, buf int) (*Client, error) {
	if buf <= 0 {
		buf = 1024
	}
	cl := &Client{in: make(chan []byte, buf), closed: make(chan struct{})}
	c, err := Dial(ctx, url, chanHandler{cl}, Options{IdleTimeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	cl.Conn = c
	return cl, nil
}

// ErrPeerClosed is returned by Recv after the connection closed and every
// buffered message was read.
var ErrPeerClosed = errors.New("wsconn: connection closed by peer")

// Recv returns the next message, waiting until ctx is done.
func (cl *Client) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-cl.in:
		return b, nil
	default:
	}
	select {
	case b := <-cl.in:
		return b, nil
	case <-cl.closed:
		select {
		case b := <-cl.in:
			return b, nil
		default:
		}
		return nil, fmt.Errorf("%w: %v", ErrPeerClosed, cl.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RecvType reads messages until one whose "type" is typ, and decodes it
// into v (if v is not nil). Messages of other types are skipped; an
// {"type":"error"} message is returned as an error unless typ is "error".
func (cl *Client) RecvType(ctx context.Context, typ string, v any) error {
	for {
		b, err := cl.Recv(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", typ, err)
		}
		var head struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return fmt.Errorf("waiting for %q: bad json %q: %w", typ, b, err)
		}
		if head.Type == typ {
			if v != nil {
				return json.Unmarshal(b, v)
			}
			return nil
		}
		if head.Type == "error" {
			return &RemoteError{Code: head.Code, Message: head.Message}
		}
	}
}

// Done is closed when the connection has closed.
func (cl *Client) Done() <-chan struct{} { return cl.closed }

// CloseErr returns why the connection closed (after Done).
func (cl *Client) CloseErr() error { return cl.err }

// RemoteError is an {"type":"error"} message received from a server.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return "server error " + e.Code + ": " + e.Message }

// CloseCode returns the close code in err if it is a WebSocket close, or 0.
func CloseCode(err error) int {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	return 0
}

// Header is a convenience for building request headers.
type Header = http.Header
