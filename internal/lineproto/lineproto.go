// Package lineproto parses and speaks the dispatcher's line protocol (see
// docs/PROTOCOL.md): text requests whose fields are split by '|', answered
// by one line. The dispatcher serves it; fight and map servers, the CLI and
// the load generators are its clients.
package lineproto

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/arena-game/arena/internal/ids"
)

// MaxLine is the longest request line accepted, in bytes, without its '\n'.
const MaxLine = 1024

// MaxMaxnum bounds maxnum|N: larger values are refused as absurd.
const MaxMaxnum = 1_000_000

// Verb is a request's first field.
type Verb uint8

// Verbs.
const (
	VerbGet Verb = iota + 1
	VerbAdd
	VerbDel
	VerbMaxnum
	VerbStat
)

func (v Verb) String() string {
	switch v {
	case VerbGet:
		return "get"
	case VerbAdd:
		return "add"
	case VerbDel:
		return "del"
	case VerbMaxnum:
		return "maxnum"
	case VerbStat:
		return "stat"
	}
	return "unknown"
}

// Process kinds named in requests.
const (
	KindFight = "fight"
	KindMap   = "map"
)

// Request is one parsed request line.
type Request struct {
	Verb  Verb
	Kind  string // get: KindFight or KindMap
	Map   string // get|map|MAPID; add/del from a map server: the map id
	Host  string // add, del: the host of HOST:PORT; "" for a bare port (the dispatcher's host)
	Port  int    // add, del
	N     int    // maxnum
	Token string // add, del, maxnum; empty when absent (seed mode)
}

// Parse errors. Each maps to the reason in the dispatcher's `err|reason`
// answer via Reason.
var (
	ErrEmpty       = errors.New("empty request")
	ErrUnknownVerb = errors.New("unknown verb")
	ErrBadKind     = errors.New("unknown process kind")
	ErrBadMap      = errors.New("bad map id")
	ErrBadPort     = errors.New("bad port")
	ErrBadNumber   = errors.New("bad number")
	ErrFields      = errors.New("wrong number of fields")
	ErrTooLong     = errors.New("line too long")
	ErrBadToken    = errors.New("bad token")
)

// Parse parses one request line (without '\n'; a trailing '\r' is
// dropped). It never panics and never allocates more than the request's
// own strings.
func Parse(line []byte) (Request, error) {
	var r Request
	if len(line) > MaxLine {
		return r, ErrTooLong
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return r, ErrEmpty
	}
	var f [5][]byte
	n := 0
	for {
		i := bytes.IndexByte(line, '|')
		if n == len(f) {
			return r, ErrFields
		}
		if i < 0 {
			f[n] = line
			n++
			break
		}
		f[n] = line[:i]
		n++
		line = line[i+1:]
	}
	switch string(f[0]) {
	case "get":
		r.Verb = VerbGet
		switch {
		case n == 1:
			r.Kind = KindFight
		case n == 2 && string(f[1]) == KindFight:
			r.Kind = KindFight
		case n == 3 && string(f[1]) == KindMap:
			r.Kind = KindMap
			if !ids.Valid(f[2]) {
				return r, ErrBadMap
			}
			r.Map = string(f[2])
		case n == 2 && string(f[1]) == KindMap:
			return r, ErrFields
		case n >= 2 && string(f[1]) != KindFight && string(f[1]) != KindMap:
			return r, ErrBadKind
		default:
			return r, ErrFields
		}
	case "add", "del":
		r.Verb = VerbAdd
		if f[0][0] == 'd' {
			r.Verb = VerbDel
		}
		if n < 2 || n > 4 {
			return r, ErrFields
		}
		host, port, ok := splitHostPort(f[1])
		if !ok {
			return r, ErrBadPort
		}
		p, ok := atoi(port)
		if !ok || p < 1 || p > 65535 {
			return r, ErrBadPort
		}
		r.Host, r.Port = string(host), p
		if n >= 3 {
			if len(f[2]) == 0 {
				return r, ErrBadToken
			}
			r.Token = string(f[2])
		}
		if n == 4 {
			if !ids.Valid(f[3]) {
				return r, ErrBadMap
			}
			r.Map = string(f[3])
		}
	case "maxnum":
		r.Verb = VerbMaxnum
		if n != 3 {
			return r, ErrFields
		}
		v, ok := atoi(f[1])
		if !ok || v < 1 || v > MaxMaxnum {
			return r, ErrBadNumber
		}
		r.N = v
		if len(f[2]) == 0 {
			return r, ErrBadToken
		}
		r.Token = string(f[2])
	case "stat":
		r.Verb = VerbStat
		if n != 1 {
			return r, ErrFields
		}
	default:
		return r, ErrUnknownVerb
	}
	return r, nil
}

// splitHostPort splits "PORT" (host "") or "HOST:PORT" ("[V6]:PORT"). A
// host is 1-253 of letters, digits, '.', '-', and ':' inside brackets.
func splitHostPort(b []byte) (host, port []byte, ok bool) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 {
		return nil, b, true
	}
	host, port = b[:i], b[i+1:]
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		inner := host[1 : len(host)-1]
		for _, c := range inner {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return nil, nil, false
			}
		}
		return inner, port, len(inner) > 0
	}
	if len(host) == 0 || len(host) > 253 {
		return nil, nil, false
	}
	for _, c := range host {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-') {
			return nil, nil, false
		}
	}
	return host, port, true
}

// atoi parses a decimal of at most 7 digits, without sign.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// Format renders r as a request line (without '\n').
func (r Request) Format() string {
	switch r.Verb {
	case VerbGet:
		if r.Kind == KindMap {
			return "get|map|" + r.Map
		}
		return "get"
	case VerbAdd, VerbDel:
		s := r.Verb.String() + "|" + strconv.Itoa(r.Port)
		if r.Host != "" {
			s = r.Verb.String() + "|" + net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
		}
		if r.Token != "" || r.Map != "" {
			s += "|" + r.Token
		}
		if r.Map != "" {
			s += "|" + r.Map
		}
		return s
	case VerbMaxnum:
		return "maxnum|" + strconv.Itoa(r.N) + "|" + r.Token
	case VerbStat:
		return "stat"
	}
	return fmt.Sprintf("verb%d", r.Verb)
}
