package memcached

import (
	"bytes"
	"math"
)

// This file is the text protocol's request parser: one command line in, one
// request out. It follows memcached 1.6.18's proto_text.c decision for
// decision (token limits, which token "noreply" may be, how numbers parse
// and which error each malformed line gets), so that a client sees the same
// answer from this server as from memcached; the differential test checks
// it against a real memcached.

// Protocol limits, as memcached's.
const (
	// MaxKeyLen is the longest key memcached accepts.
	MaxKeyLen = 250
	// maxTokens is memcached's MAX_TOKENS: at most maxTokens-1 tokens are
	// split off a line; the rest stays unsplit.
	maxTokens = 24
	// relativeMax is memcached's REALTIME_MAXDELTA: an expiry time above it
	// is an absolute Unix time, at or below it a number of seconds from now.
	relativeMax = 60 * 60 * 24 * 30
)

// Replies a line or a data block can get. Each is sent with "\r\n".
const (
	replyError        = "ERROR"
	replyBadFormat    = "CLIENT_ERROR bad command line format"
	replyBadDelete    = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadChunk     = "CLIENT_ERROR bad data chunk"
	replyBadExptime   = "CLIENT_ERROR invalid exptime argument"
	replyBadDelta     = "CLIENT_ERROR invalid numeric delta argument"
	replyNonNumeric   = "CLIENT_ERROR cannot increment or decrement non-numeric value"
	replyTooLarge     = "SERVER_ERROR object too large for cache"
	replyOutOfMemory  = "SERVER_ERROR out of memory storing object"
	replyStored       = "STORED"
	replyNotStored    = "NOT_STORED"
	replyExists       = "EXISTS"
	replyNotFound     = "NOT_FOUND"
	replyDeleted      = "DELETED"
	replyTouched      = "TOUCHED"
	replyOK           = "OK"
	replyTooManyConns = "ERROR Too many open connections"
)

// op is a request's command.
type op uint8

const (
	opNone      op = iota // the line is answered by request.reply alone (or closes)
	opGet                 // get, bget
	opGets                // gets
	opGat                 // gat
	opGats                // gats
	opSet                 // set
	opAdd                 // add
	opReplace             // replace
	opAppend              // append
	opPrepend             // prepend
	opCAS                 // cas
	opIncr                // incr
	opDecr                // decr
	opDelete              // delete
	opTouch               // touch
	opFlush               // flush_all
	opVersion             // version
	opVerbosity           // verbosity
	opQuit                // quit
)

// isStorage reports whether o reads a data block after its line.
func (o op) isStorage() bool { return o >= opSet && o <= opCAS }

// isRetrieval reports whether o is one of the get family.
func (o op) isRetrieval() bool { return o >= opGet && o <= opGats }

// request is one parsed command line. Byte slices point into the line.
type request struct {
	op op
	// reply, when set, is the answer to send (subject to noreply). For the
	// get family it is sent after keys were looked up (a key over the limit
	// stops the lookups there, as memcached does).
	reply string
	// close means close the connection without answering (memcached's
	// answer to an HTTP request line, or to a line it cannot hold).
	close   bool
	noreply bool
	// keys is the get family's space-separated key list: the rest of the
	// line, or the part before the first key over MaxKeyLen when reply is
	// set. Iterate it with nextKey.
	keys    []byte
	key     []byte
	flags   uint32
	exptime int32 // as sent; see expiry
	vlen    int32 // the data block's declared length, without "\r\n"
	cas     uint64
	delta   uint64
}

// token splitting ----------------------------------------------------------

// tokenize splits line on spaces the way memcached's tokenize_command does:
// at most maxTokens-1 tokens, and more reports whether anything but spaces
// is left after them.
func tokenize(line []byte, tokens [][]byte) (toks [][]byte, more bool) {
	toks = tokens[:0]
	s := 0
	for e := 0; e < len(line); e++ {
		if line[e] != ' ' {
			continue
		}
		if s != e {
			toks = append(toks, line[s:e])
			if len(toks) == maxTokens-1 {
				return toks, e+1 < len(line)
			}
		}
		s = e + 1
	}
	if s < len(line) {
		toks = append(toks, line[s:])
	}
	return toks, false
}

// cutLine turns the bytes before a '\n' into memcached's command string: a
// trailing '\r' is dropped when something precedes it, and the string ends
// at its first NUL byte (memcached parses it as a C string).
func cutLine(line []byte) []byte {
	if n := len(line); n > 1 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line
}

// parse turns one command line (already cut by cutLine) into a request.
// parse never fails: a bad line becomes a request with its error reply.
func parse(line []byte) request {
	var tokBuf [maxTokens][]byte
	toks, _ := tokenize(line, tokBuf[:0])
	// memcached counts the terminal token too.
	ntokens := len(toks) + 1
	if len(toks) == 0 || len(toks[0]) < 2 {
		return request{reply: replyError}
	}
	cmd := string(toks[0]) // does not allocate: used in comparisons only
	switch {
	case cmd[0] == 'm' && len(cmd) == 2:
		// memcached's meta commands (mg, ms, md, ma, mn, me) are not served.
		return request{reply: replyError}
	case cmd[0] == 'g':
		if ntokens < 3 {
			return request{reply: replyError}
		}
		if o, ok := retrievals[cmd]; ok {
			return parseRetrieval(o, line, toks)
		}
		return request{reply: replyError}
	case storages[cmd] != opNone:
		return parseStorage(storages[cmd], toks, ntokens)
	case cmd == "incr":
		return parseArith(opIncr, toks, ntokens)
	case cmd == "decr":
		return parseArith(opDecr, toks, ntokens)
	case cmd == "delete":
		return parseDelete(toks, ntokens)
	case cmd == "touch":
		return parseTouch(toks, ntokens)
	case cmd == "bget":
		if ntokens < 3 {
			return request{reply: replyError}
		}
		return parseRetrieval(opGet, line, toks)
	case cmd == "flush_all":
		return parseFlush(toks, ntokens)
	case cmd == "version":
		return request{op: opVersion}
	case cmd == "quit":
		return request{op: opQuit}
	case cmd == "verbosity":
		if ntokens != 3 && ntokens != 4 {
			return request{reply: replyError}
		}
		r := request{op: opVerbosity, noreply: noreplyAt(toks)}
		if _, ok := safeStrtoul(toks[1]); !ok {
			return request{reply: replyBadFormat, noreply: r.noreply}
		}
		return r
	case cmd[0] == 's' || cmd[0] == 'a' || cmd[0] == 'c' || cmd[0] == 'i' ||
		cmd[0] == 'd' || cmd[0] == 't' || knownUnserved(cmd):
		// memcached's other commands (stats, shutdown, slabs,
		// cache_memlimit, lru, lru_crawler, watch) and unknown words
		// under its first-letter branches: plain ERROR.
		return request{reply: replyError}
	}
	// An HTTP request line sent to memcached's port is closed without an
	// answer.
	if bytes.HasPrefix(toks[len(toks)-1], []byte("HTTP/")) {
		return request{close: true}
	}
	return request{reply: replyError}
}

// The get family and the storage commands, by name.
var (
	retrievals = map[string]op{"get": opGet, "gets": opGets, "gat": opGat, "gats": opGats}
	storages   = map[string]op{"set": opSet, "add": opAdd, "append": opAppend, "replace": opReplace, "prepend": opPrepend, "cas": opCAS}
)

// knownUnserved reports the memcached commands outside the first-letter
// branches that this server does not implement; they answer ERROR without
// memcached's HTTP check.
func knownUnserved(cmd string) bool {
	switch cmd {
	case "lru_crawler", "watch", "lru", "extstore", "refresh_certs", "misbehave":
		return true
	}
	return false
}

// noreplyAt reports whether the last token is "noreply" (memcached's
// set_noreply_maybe looks at that one token only).
func noreplyAt(toks [][]byte) bool {
	return string(toks[len(toks)-1]) == "noreply"
}

func parseRetrieval(o op, line []byte, toks [][]byte) request {
	r := request{op: o}
	first := 1
	if o == opGat || o == opGats {
		exp, ok := safeStrtol(toks[1])
		if !ok {
			return request{reply: replyBadExptime}
		}
		r.exptime = exp
		first = 2
	}
	if first >= len(toks) {
		return r // "gat 10": no keys, just END
	}
	// The keys are the rest of the line from the first one on, however
	// many (memcached splits a long list maxTokens at a time, to the same
	// effect). A key over MaxKeyLen ends the list there with an error.
	keys := line[cap(line)-cap(toks[first]):]
	for pos := 0; pos < len(keys); {
		for pos < len(keys) && keys[pos] == ' ' {
			pos++
		}
		end := pos
		for end < len(keys) && keys[end] != ' ' {
			end++
		}
		if end-pos > MaxKeyLen {
			r.keys = keys[:pos]
			r.reply = replyBadFormat
			return r
		}
		pos = end
	}
	r.keys = keys
	return r
}

// nextKey returns the first space-separated key in list (empty when only
// spaces are left) and what follows it.
func nextKey(list []byte) (key, rest []byte) {
	i := 0
	for i < len(list) && list[i] == ' ' {
		i++
	}
	j := i
	for j < len(list) && list[j] != ' ' {
		j++
	}
	return list[i:j], list[j:]
}

func parseStorage(o op, toks [][]byte, ntokens int) request {
	want := 6
	if o == opCAS {
		want = 7
	}
	if ntokens != want && ntokens != want+1 {
		return request{reply: replyError}
	}
	r, ok := keyed(o, toks)
	if !ok {
		return r
	}
	bad := request{reply: replyBadFormat, noreply: r.noreply}
	var ok1, ok2, ok3 bool
	r.flags, ok1 = safeStrtoul(toks[2])
	if ok1 {
		r.exptime, ok2 = safeStrtol(toks[3])
	}
	if ok2 {
		r.vlen, ok3 = safeStrtol(toks[4])
	}
	if !ok3 {
		return bad
	}
	if o == opCAS {
		if r.cas, ok = safeStrtoull(toks[5]); !ok {
			return bad
		}
	}
	if r.vlen < 0 || r.vlen > math.MaxInt32-2 {
		return bad
	}
	return r
}

func parseArith(o op, toks [][]byte, ntokens int) request {
	if ntokens != 4 && ntokens != 5 {
		return request{reply: replyError}
	}
	r, ok := keyed(o, toks)
	if !ok {
		return r
	}
	if r.delta, ok = safeStrtoull(toks[2]); !ok {
		return request{reply: replyBadDelta, noreply: r.noreply}
	}
	return r
}

// keyed starts the request of a command whose second token is its key,
// with "noreply" as the last token: a key over MaxKeyLen is memcached's
// bad-format error (false).
func keyed(o op, toks [][]byte) (request, bool) {
	r := request{op: o, noreply: noreplyAt(toks)}
	if len(toks[1]) > MaxKeyLen {
		return request{reply: replyBadFormat, noreply: r.noreply}, false
	}
	r.key = toks[1]
	return r, true
}

func parseDelete(toks [][]byte, ntokens int) request {
	if ntokens < 3 || ntokens > 5 {
		return request{reply: replyError}
	}
	r := request{op: opDelete}
	if ntokens > 3 {
		holdIsZero := string(toks[2]) == "0"
		r.noreply = noreplyAt(toks)
		valid := (ntokens == 4 && (holdIsZero || r.noreply)) ||
			(ntokens == 5 && holdIsZero && r.noreply)
		if !valid {
			return request{reply: replyBadDelete, noreply: r.noreply}
		}
	}
	if len(toks[1]) > MaxKeyLen {
		return request{reply: replyBadFormat, noreply: r.noreply}
	}
	r.key = toks[1]
	return r
}

func parseTouch(toks [][]byte, ntokens int) request {
	if ntokens != 4 && ntokens != 5 {
		return request{reply: replyError}
	}
	r, ok := keyed(opTouch, toks)
	if !ok {
		return r
	}
	if r.exptime, ok = safeStrtol(toks[2]); !ok {
		return request{reply: replyBadExptime, noreply: r.noreply}
	}
	return r
}

func parseFlush(toks [][]byte, ntokens int) request {
	if ntokens < 2 || ntokens > 4 {
		return request{reply: replyError}
	}
	r := request{op: opFlush, noreply: noreplyAt(toks)}
	plain := 2
	if r.noreply {
		plain = 3
	}
	if ntokens != plain {
		var ok bool
		if r.exptime, ok = safeStrtol(toks[1]); !ok {
			return request{reply: replyBadExptime, noreply: r.noreply}
		}
	}
	return r
}

// C number parsing ----------------------------------------------------------
//
// memcached parses numbers with strtol/strtoull and then checks what
// follows; these functions reproduce that on 64-bit Linux, where long is 64
// bits: leading white space and a sign are accepted, a number ends at white
// space or the end of the string, a 32-bit result is the 64-bit one
// truncated.

func isCSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

// cNumberStart skips what C's strtol and strtoull accept before the
// digits: white space, then one sign. It returns where the digits start and
// whether the sign was '-'.
func cNumberStart(s []byte) (i int, neg bool) {
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	return i, neg
}

// strtou64 is C's strtoull in base 10: the value (negated modulo 2^64 after
// a '-'), the index where parsing stopped (0 when nothing was converted) and
// whether the magnitude overflowed (ERANGE).
func strtou64(s []byte) (v uint64, end int, overflow bool) {
	i, neg := cNumberStart(s)
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
		i++
	}
	if i == start {
		return 0, 0, false
	}
	if overflow {
		return math.MaxUint64, i, true
	}
	if neg {
		v = -v
	}
	return v, i, false
}

// strtoi64 is C's strtol in base 10 with a 64-bit long.
func strtoi64(s []byte) (v int64, end int, overflow bool) {
	i, neg := cNumberStart(s)
	start := i
	var mag uint64
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if mag > (limit-d)/10 {
			overflow = true
		} else {
			mag = mag*10 + d
		}
		i++
	}
	if i == start {
		return 0, 0, false
	}
	if overflow {
		if neg {
			return math.MinInt64, i, true
		}
		return math.MaxInt64, i, true
	}
	if neg {
		return int64(-mag), i, false
	}
	return int64(mag), i, false
}

// endsNumber reports whether a number that stopped at end of s is properly
// terminated: by the end of the string or by white space.
func endsNumber(s []byte, end int) bool {
	return end == len(s) || isCSpace(s[end]) || s[end] == 0
}

// safeStrtoull is memcached's safe_strtoull: a 64-bit unsigned number, with
// a negative one refused when it would read as negative signed.
func safeStrtoull(s []byte) (uint64, bool) {
	v, end, overflow := strtou64(s)
	if overflow || end == 0 || !endsNumber(s, end) {
		return 0, false
	}
	if int64(v) < 0 {
		str := s
		if i := bytes.IndexByte(str, 0); i >= 0 {
			str = str[:i]
		}
		if bytes.IndexByte(str, '-') >= 0 {
			return 0, false
		}
	}
	return v, true
}

// safeStrtoul is memcached's safe_strtoul: as safeStrtoull, truncated to 32
// bits.
func safeStrtoul(s []byte) (uint32, bool) {
	v, ok := safeStrtoull(s)
	return uint32(v), ok
}

// safeStrtol is memcached's safe_strtol: a 64-bit signed number truncated
// to 32 bits.
func safeStrtol(s []byte) (int32, bool) {
	v, end, overflow := strtoi64(s)
	if overflow || end == 0 || !endsNumber(s, end) {
		return 0, false
	}
	return int32(v), true
}
