package memcached

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// binaryMagic starts every request of memcached's binary protocol, which
// this server does not speak.
const binaryMagic = 0x80

var (
	errLineTooLong = errors.New("memcached: line too long")
	errBinary      = errors.New("memcached: binary protocol not served")
)

// session is one client connection: one buffered reader for all of its
// requests (so pipelined ones are read in order and none is lost), one
// buffered writer flushed whenever no further request is already buffered.
type session struct {
	cache *cache
	br    *bufio.Reader
	bw    *bufio.Writer

	// watch, when set, is read by the server's watchdog, which closes a
	// connection whose command or write has taken too long (see
	// Server.watchdog). Without it (the fuzz tests) nothing is timed.
	watch *watch

	started bool
	keyBuf  []byte // a storage command's key, kept while its data is read
	out     []byte // scratch for answer lines
	long    []byte // a get line longer than the read buffer
}

func newSession(c *cache, r io.Reader, w io.Writer) *session {
	return &session{
		cache: c,
		br:    bufio.NewReaderSize(r, readBufSize),
		bw:    bufio.NewWriterSize(w, 16<<10),
		out:   make([]byte, 0, 512),
	}
}

// run serves requests until the client leaves, a write fails, or the
// client sends what memcached would close the connection for. Answers
// already produced are flushed before it returns.
func (s *session) run() {
	defer s.bw.Flush()
	for {
		if err := s.await(); err != nil {
			return
		}
		line, err := s.readLine()
		if err != nil {
			return
		}
		if !s.handle(line) {
			return
		}
	}
}

// await flushes the answers when no request is buffered and waits for the
// next one's first byte, then tells the watchdog a command has started.
func (s *session) await() error {
	if s.br.Buffered() == 0 {
		if err := s.bw.Flush(); err != nil {
			return err
		}
		s.watch.idle()
		if _, err := s.br.Peek(1); err != nil {
			return err
		}
	}
	s.watch.commandStarts()
	// A line not complete yet: send the answers so far while waiting for
	// the rest (the client may wait for them first), as memcached does.
	if b, _ := s.br.Peek(s.br.Buffered()); bytes.IndexByte(b, '\n') < 0 {
		if err := s.bw.Flush(); err != nil {
			return err
		}
	}
	if !s.started {
		s.started = true
		if b, _ := s.br.Peek(1); len(b) == 1 && b[0] == binaryMagic {
			return errBinary
		}
	}
	return nil
}

// readLine reads one command line and cuts it as memcached does. A line
// that outgrows the read buffer is an error (the connection closes, as
// memcached closes it) unless it is a get or gets, which may reach
// maxGetLine. The line is valid until the next read.
func (s *session) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == nil {
		return cutLine(line[:len(line)-1]), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err // EOF inside a line: memcached drops it too
	}
	if !isGetLine(line) {
		return nil, errLineTooLong
	}
	s.long = append(s.long[:0], line...)
	for {
		line, err = s.br.ReadSlice('\n')
		if len(s.long)+len(line) > maxGetLine {
			return nil, errLineTooLong
		}
		s.long = append(s.long, line...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	long := s.long
	if cap(s.long) > 4*readBufSize {
		s.long = nil // do not keep megabytes per idle connection
	}
	return cutLine(long[:len(long)-1]), nil
}

// isGetLine is memcached's test for a line it lets grow without bound: at
// most 100 leading spaces, then "get " or "gets ".
func isGetLine(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i > 100 {
		return false
	}
	b = b[i:]
	return len(b) >= 4 && string(b[:4]) == "get " || len(b) >= 5 && string(b[:5]) == "gets "
}

// handle answers one line (reading its data block if it has one) and
// reports whether the connection stays open.
func (s *session) handle(line []byte) bool {
	r := parse(line)
	switch {
	case r.close:
		return false
	case r.op == opNone:
		s.reply(r.reply, r.noreply)
	case r.op.isRetrieval():
		s.retrieve(&r)
	case r.op.isStorage():
		return s.storeCommand(&r)
	case r.op == opIncr || r.op == opDecr:
		out, res := s.cache.delta(r.key, r.op == opIncr, r.delta, s.out[:0])
		switch res {
		case deltaOK:
			if !r.noreply {
				s.bw.Write(out)
				s.bw.WriteString("\r\n")
			}
		case deltaNotFound:
			s.reply(replyNotFound, r.noreply)
		case deltaNonNumeric:
			s.reply(replyNonNumeric, r.noreply)
		case deltaNoMemory:
			s.reply("SERVER_ERROR out of memory", r.noreply)
		}
	case r.op == opDelete:
		if s.cache.remove(r.key) {
			s.reply(replyDeleted, r.noreply)
		} else {
			s.reply(replyNotFound, r.noreply)
		}
	case r.op == opTouch:
		if s.cache.touch(r.key, r.exptime) {
			s.reply(replyTouched, r.noreply)
		} else {
			s.reply(replyNotFound, r.noreply)
		}
	case r.op == opFlush:
		s.cache.flush(r.exptime)
		s.reply(replyOK, r.noreply)
	case r.op == opVersion:
		s.reply("VERSION "+Version, false)
	case r.op == opVerbosity:
		s.reply(replyOK, r.noreply)
	case r.op == opQuit:
		return false
	}
	return true
}

func (s *session) reply(msg string, noreply bool) {
	if noreply {
		return
	}
	s.bw.WriteString(msg)
	s.bw.WriteString("\r\n")
}

// retrieve answers the get family: a VALUE block per key found, then END;
// or, when a key was over the limit, the keys before it are still looked
// up (and touched) but only the error is answered, as memcached does.
func (s *session) retrieve(r *request) {
	touch := r.op == opGat || r.op == opGats
	withCAS := r.op == opGets || r.op == opGats
	for rest := r.keys; len(rest) > 0; {
		var k []byte
		k, rest = nextKey(rest)
		if len(k) == 0 {
			continue
		}
		v, flags, cas, ok := s.cache.get(k, touch, r.exptime)
		if !ok || r.reply != "" {
			continue
		}
		out := append(s.out[:0], "VALUE "...)
		out = append(out, k...)
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(flags), 10)
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(len(v)), 10)
		if withCAS {
			out = append(out, ' ')
			out = strconv.AppendUint(out, cas, 10)
		}
		out = append(out, '\r', '\n')
		s.bw.Write(out)
		s.bw.Write(v)
		s.bw.WriteString("\r\n")
		s.out = out[:0]
	}
	if r.reply != "" {
		s.reply(r.reply, false)
		return
	}
	s.bw.WriteString("END\r\n")
}

// storeCommand reads a storage command's data block and stores it. A block
// too large to store is read and thrown away without being held; a block
// not ended by "\r\n" is refused and what follows it is read as the next
// command, as memcached does.
func (s *session) storeCommand(r *request) bool {
	s.keyBuf = append(s.keyBuf[:0], r.key...) // the line's buffer is reused by the read
	key := s.keyBuf
	n := int64(r.vlen) + 2
	if msg := s.cache.admit(len(key), int(r.vlen), r.flags); msg != "" {
		s.reply(msg, r.noreply)
		s.cache.refuse(r.op, key)
		return s.discard(n)
	}
	data, err := s.readData(int(n))
	if err != nil {
		return false
	}
	if data[r.vlen] != '\r' || data[r.vlen+1] != '\n' {
		s.reply(replyBadChunk, r.noreply)
		return true
	}
	res := s.cache.store(r.op, key, r.flags, r.exptime, data[:r.vlen:r.vlen], r.cas)
	s.reply(res.reply(), r.noreply)
	return true
}

// readData reads exactly n bytes into a new slice that grows as they
// arrive, so a declared length costs memory only once it is sent.
func (s *session) readData(n int) ([]byte, error) {
	const step = 64 << 10
	if n > s.br.Buffered() {
		if err := s.bw.Flush(); err != nil {
			return nil, err
		}
	}
	if n <= s.br.Buffered() || n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(s.br, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), n))
			copy(nb, buf)
			buf = nb
		}
		m, err := s.br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			return nil, err
		}
	}
	return buf, nil
}

// discard reads and drops n bytes (memcached's swallow), reporting whether
// the connection is still usable.
func (s *session) discard(n int64) bool {
	for n > 0 {
		// Answers so far go out first: the client may wait for them
		// before it sends the rest.
		if s.br.Buffered() == 0 {
			if s.bw.Flush() != nil {
				return false
			}
		}
		k, err := s.br.Discard(int(min(n, readBufSize)))
		n -= int64(k)
		if err != nil {
			return false
		}
	}
	return true
}
