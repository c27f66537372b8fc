package mapbench

import (
	"bufio"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/lineproto"
)

// responder is a tiny stand-in for the dispatcher's line protocol on
// 127.0.0.1: get|map|MAPID answers the port the bench placed that map
// on; add and del (with the fleet token) answer ok and are counted.
type responder struct {
	ln    net.Listener
	token string

	mu    sync.Mutex
	ports map[string]int

	adds, dels, gets atomic.Int64
	wg               sync.WaitGroup
}

func startResponder(token string) (*responder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &responder{ln: ln, token: token, ports: map[string]int{}}
	go r.accept()
	return r, nil
}

func (r *responder) addr() string { return r.ln.Addr().String() }

func (r *responder) place(mapID string, port int) {
	r.mu.Lock()
	r.ports[mapID] = port
	r.mu.Unlock()
}

func (r *responder) close() {
	r.ln.Close()
}

func (r *responder) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.serve(c)
	}
}

func (r *responder) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 2048)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		req, err := lineproto.Parse(line[:len(line)-1])
		var ans string
		switch {
		case err != nil:
			ans = "err|" + err.Error()
		case req.Verb == lineproto.VerbGet && req.Kind == lineproto.KindMap:
			r.gets.Add(1)
			r.mu.Lock()
			p, ok := r.ports[req.Map]
			r.mu.Unlock()
			if ok {
				ans = strconv.Itoa(p)
			} else {
				ans = "err|unknown map"
			}
		case (req.Verb == lineproto.VerbAdd || req.Verb == lineproto.VerbDel) && auth.EqualSecret(req.Token, r.token):
			if req.Verb == lineproto.VerbAdd {
				r.adds.Add(1)
			} else {
				r.dels.Add(1)
			}
			ans = "ok"
		default:
			ans = "err|refused"
		}
		if _, err := c.Write([]byte(ans + "\n")); err != nil {
			return
		}
	}
}
