package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arena-game/arena/playerdb"
)

// outbox is a directory of results not yet known to be in the database.
//
// Each Recorder appends to log segments of its own, files named
// log-*.jsonl holding one JSON line per event: a result queued
// ({"v":1,"result":...}) and, once the database took it, a mark
// ({"done":ROOM}). A line is one write on a file opened for appending, so
// an entry survives its process (a crash, a kill) as soon as put returns;
// it is synced to the disk (group fsync: one for every line appended
// before it started) only when the result stays pending, the database's
// commit being what lasts otherwise. A segment is created under a hidden
// name, locked (flock) and only then renamed into place, and its owner
// holds the lock while it lives: the kernel drops it when the process
// dies, and another Recorder on the directory then claims the segment,
// applies the entries not marked done and deletes it. Its owner deletes a
// segment once it has rotated to a new one and every entry is done.
//
// ROOM.json files (one entry each, written by earlier versions) are still
// drained and removed. Applying a result twice changes nothing, so a
// result whose mark was lost (the process died between the commit and the
// mark) is a harmless duplicate.
type outbox struct {
	dir string

	mu     sync.Mutex
	cur    *segment            // where put appends; nil before the first put or after a write failed
	segs   map[string]*segment // this outbox's segments (locked by it), by file name
	closed bool

	dirSync groupSync // fsyncs of the directory
}

// segment is one of this outbox's log files.
type segment struct {
	name   string
	f      *os.File
	size   int64
	live   int  // entries not yet marked done
	broken bool // a write failed: the next line starts on a line of its own
	sync   groupSync
}

// line is one line of a segment.
type line struct {
	Version int              `json:"v,omitempty"`
	Result  *playerdb.Result `json:"result,omitempty"`
	Done    string           `json:"done,omitempty"`
}

// ledger tallies a segment's lines: the entries not marked done, by room.
// Every entry line opens one and every mark closes one, so a room
// reported twice (two entries) waits for two marks.
type ledger struct {
	open   map[string]int
	latest map[string]playerdb.Result // each room's last entry
	order  []string                   // rooms in the order first queued
}

// add tallies one line; false when it is neither an entry nor a mark.
func (g *ledger) add(raw []byte) bool {
	var l line
	if json.Unmarshal(raw, &l) != nil {
		return false
	}
	if g.open == nil {
		g.open, g.latest = map[string]int{}, map[string]playerdb.Result{}
	}
	switch {
	case l.Done != "":
		if g.open[l.Done]--; g.open[l.Done] <= 0 {
			delete(g.open, l.Done)
		}
	case l.Result != nil && l.Version == entryVersion:
		room := l.Result.Room
		if _, seen := g.latest[room]; !seen {
			g.order = append(g.order, room)
		}
		g.open[room]++
		g.latest[room] = *l.Result
	default:
		return false
	}
	return true
}

// forget closes room's entries (applied by this Recorder).
func (g *ledger) forget(room string) { delete(g.open, room) }

// waiting returns the entries not marked done, one per room, in the order
// their rooms were first queued.
func (g *ledger) waiting() []playerdb.Result {
	var out []playerdb.Result
	for _, room := range g.order {
		if g.open[room] > 0 {
			out = append(out, g.latest[room])
		}
	}
	return out
}

// entry is one ROOM.json file.
type entry struct {
	Version int             `json:"v"`
	Result  playerdb.Result `json:"result"`
}

const entryVersion = 1

// segmentMax is the size at which put starts a new segment.
const segmentMax = 1 << 20

// rejectedDir holds entries the database refused as malformed (never
// expected: results are checked before they are queued), and unreadable
// lines, kept for an operator to look at.
const rejectedDir = "rejected"

const (
	segPrefix = "log-"
	segSuffix = ".jsonl"
)

func openOutbox(dir string) (*outbox, error) {
	if dir == "" {
		return nil, errors.New("open outbox: no directory")
	}
	if err := os.MkdirAll(filepath.Join(dir, rejectedDir), 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	return &outbox{dir: dir, segs: map[string]*segment{}}, nil
}

func isSegment(name string) bool {
	return strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, segSuffix)
}

// put appends r to this outbox's current segment (starting one when there
// is none or it is full) and returns the segment, for done and sync. From
// then on the entry survives this process; it is not synced to the disk.
func (o *outbox) put(r playerdb.Result) (*segment, error) {
	b, err := json.Marshal(line{Version: entryVersion, Result: &r})
	if err != nil {
		return nil, fmt.Errorf("outbox put %s: %w", r.Room, err)
	}
	b = append(b, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("outbox put %s: outbox closed", r.Room)
	}
	if o.cur == nil || o.cur.size >= segmentMax {
		if err := o.rotateLocked(); err != nil {
			return nil, fmt.Errorf("outbox put %s: %w", r.Room, err)
		}
	}
	s := o.cur
	if err := s.appendLine(b); err != nil {
		o.cur = nil // the next put starts a new segment
		o.dropIfDoneLocked(s)
		return nil, fmt.Errorf("outbox put %s: %w", r.Room, err)
	}
	s.live++
	return s, nil
}

// appendLine writes b (a whole line) at the end of s.
func (s *segment) appendLine(b []byte) error {
	if s.broken {
		b = append([]byte{'\n'}, b...)
	}
	n, err := s.f.Write(b)
	s.size += int64(n)
	if err != nil {
		s.broken = true
		return err
	}
	s.broken = false
	return nil
}

// rotateLocked starts a new current segment: created under a hidden name,
// locked, renamed into place and the directory synced, so no other
// Recorder ever sees it unlocked and its name survives a crash of the
// machine. The previous one is deleted if every entry in it is done.
func (o *outbox) rotateLocked() error {
	name := fmt.Sprintf("%s%016x-%d-%08x%s", segPrefix, time.Now().UnixNano(), os.Getpid(), rand.Uint32(), segSuffix)
	tmp := filepath.Join(o.dir, "."+name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if locked, err := tryLock(f); err != nil || !locked {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("lock new segment: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, name)); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return err
	}
	s := &segment{name: name, f: f}
	o.segs[name] = s
	if err := o.dirSync.do(func() error { return syncDir(o.dir) }); err != nil {
		o.dropIfDoneLocked(s)
		return err
	}
	if prev := o.cur; prev != nil {
		o.cur = nil
		o.dropIfDoneLocked(prev)
	}
	o.cur = s
	return nil
}

// dropIfDoneLocked deletes s if it is no longer current and every entry
// in it is done.
func (o *outbox) dropIfDoneLocked(s *segment) {
	if s == o.cur || s.live > 0 {
		return
	}
	_ = os.Remove(filepath.Join(o.dir, s.name))
	s.f.Close()
	delete(o.segs, s.name)
}

// done marks room's entry in s applied (s from put). A mark that cannot be
// written leaves the entry to be applied again later: a duplicate.
func (o *outbox) done(s *segment, room string) error {
	b, _ := json.Marshal(line{Done: room})
	b = append(b, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	s.live--
	var err error
	if o.segs[s.name] == s {
		err = s.appendLine(b)
	}
	o.dropIfDoneLocked(s)
	if err != nil {
		return fmt.Errorf("outbox done %s: %w", room, err)
	}
	return nil
}

// sync makes s's entries durable on the disk, with one fsync for the
// entries of every caller waiting at the moment; it fails if s is no
// longer the file of its name (the directory was removed or replaced).
func (o *outbox) sync(s *segment) error {
	if err := s.sync.do(s.f.Sync); err != nil {
		return fmt.Errorf("outbox sync: %w", err)
	}
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("outbox sync: %w", err)
	}
	pi, err := os.Stat(filepath.Join(o.dir, s.name))
	if err != nil || !os.SameFile(fi, pi) {
		return fmt.Errorf("outbox sync: segment %s is gone from %s", s.name, o.dir)
	}
	return nil
}

// close releases this outbox's segments (their locks) for other Recorders
// to claim; those whose entries are all done are deleted.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.cur = nil
	for _, s := range o.segs {
		if s.live == 0 {
			_ = os.Remove(filepath.Join(o.dir, s.name))
		}
		s.f.Close()
	}
	o.segs = map[string]*segment{}
}

// claimed is another Recorder's segment whose lock this one took: its
// owner is gone.
type claimed struct {
	o       *outbox
	name    string
	f       *os.File
	entries []playerdb.Result // not done, in order
	torn    bool              // the file does not end with a whole line
}

// claimSegments takes the lock of every segment of the directory that no
// live Recorder holds, oldest first, and reads the entries not done; busy
// names the segments live Recorders hold. Lines that cannot be read are
// copied to rejected/ and reported in bad.
func (o *outbox) claimSegments() (cs []*claimed, busy []string, bad []error, err error) {
	des, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("outbox list: %w", err)
	}
	var names []string
	o.mu.Lock()
	for _, de := range des {
		if n := de.Name(); !de.IsDir() && isSegment(n) && o.segs[n] == nil {
			names = append(names, n)
		}
	}
	o.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		c, rej, err := o.claim(name)
		bad = append(bad, rej...)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		if c != nil {
			cs = append(cs, c)
		} else if _, err := os.Stat(filepath.Join(o.dir, name)); err == nil {
			busy = append(busy, name)
		}
	}
	return cs, busy, bad, nil
}

// tail follows a segment a live Recorder holds, as it grows.
type tail struct {
	off     int64
	partial []byte // the start of a line not yet whole
	led     ledger
	since   map[string]time.Time // when this Recorder first saw each waiting room
}

// follow reads what was appended to segment name since t last read it.
// Lines that cannot be read are left for the Recorder that claims the
// segment once its owner is gone.
func (o *outbox) follow(t *tail, name string, now time.Time) error {
	f, err := os.Open(filepath.Join(o.dir, name))
	if err != nil {
		return fmt.Errorf("outbox follow %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return fmt.Errorf("outbox follow %s: %w", name, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("outbox follow %s: %w", name, err)
	}
	t.off += int64(len(data))
	if len(t.partial) > 0 {
		data = append(t.partial, data...)
	}
	end := bytes.LastIndexByte(data, '\n')
	t.partial = bytes.Clone(data[end+1:])
	if end < 0 {
		return nil
	}
	for _, raw := range bytes.Split(data[:end], []byte{'\n'}) {
		t.led.add(raw)
	}
	if t.since == nil {
		t.since = map[string]time.Time{}
	}
	for room := range t.since {
		if t.led.open[room] <= 0 {
			delete(t.since, room)
		}
	}
	for room := range t.led.open {
		if _, ok := t.since[room]; !ok {
			t.since[room] = now
		}
	}
	return nil
}

// claim locks segment name and reads it; nil when a live Recorder holds
// it or it is gone.
func (o *outbox) claim(name string) (*claimed, []error, error) {
	path := filepath.Join(o.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("outbox claim %s: %w", name, err)
	}
	if ok, err := tryLock(f); err != nil || !ok {
		f.Close()
		return nil, nil, nil
	}
	// Locked; but it may have been deleted by the Recorder that drained
	// it just before (this one opened the old file).
	fi, ferr := f.Stat()
	pi, perr := os.Stat(path)
	if ferr != nil || perr != nil || !os.SameFile(fi, pi) {
		f.Close()
		return nil, nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("outbox claim %s: %w", name, err)
	}
	c := &claimed{o: o, name: name, f: f, torn: len(data) > 0 && data[len(data)-1] != '\n'}
	var bad []error
	var led ledger
	last := bytes.Count(data, []byte{'\n'}) // the index of the piece after the last newline
	for i, raw := range bytes.Split(data, []byte{'\n'}) {
		if len(raw) == 0 || (c.torn && i == last) {
			continue // an empty line, or the torn last one: never acknowledged
		}
		if !led.add(raw) {
			bad = append(bad, o.rejectRaw(fmt.Sprintf("%s-%d.json", strings.TrimSuffix(name, segSuffix), i+1), raw))
		}
	}
	c.entries = led.waiting()
	return c, bad, nil
}

// done marks room's entry of c applied.
func (c *claimed) done(room string) error {
	b, _ := json.Marshal(line{Done: room})
	b = append(b, '\n')
	if c.torn {
		b = append([]byte{'\n'}, b...)
	}
	if _, err := c.f.Write(b); err != nil {
		return fmt.Errorf("outbox done %s: %w", room, err)
	}
	c.torn = false
	return nil
}

// release lets c go: deleted first when all its entries are applied.
func (c *claimed) release(all bool) error {
	var err error
	if all {
		err = os.Remove(filepath.Join(c.o.dir, c.name))
	}
	c.f.Close()
	return err
}

// rejectRaw keeps an unreadable line in rejected/ under name.
func (o *outbox) rejectRaw(name string, raw []byte) error {
	path := filepath.Join(o.dir, rejectedDir, name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("outbox: unreadable line not kept in %s: %w", path, err)
	}
	return fmt.Errorf("outbox: unreadable line moved to %s", path)
}

// rejectResult keeps a result the database refused in rejected/ROOM.json.
func (o *outbox) rejectResult(r playerdb.Result) error {
	b, err := json.Marshal(entry{Version: entryVersion, Result: r})
	if err == nil {
		err = os.WriteFile(filepath.Join(o.dir, rejectedDir, r.Room+".json"), b, 0o600)
	}
	return err
}

func (o *outbox) path(room string) string { return filepath.Join(o.dir, room+".json") }

// remove deletes room's ROOM.json entry; a missing entry is not an error
// (another process drained it).
func (o *outbox) remove(room string) error {
	if err := os.Remove(o.path(room)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbox remove %s: %w", room, err)
	}
	return nil
}

// reject moves room's ROOM.json entry aside into rejected/.
func (o *outbox) reject(room string) error {
	if err := os.Rename(o.path(room), filepath.Join(o.dir, rejectedDir, room+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbox reject %s: %w", room, err)
	}
	return nil
}

// rooms lists the rooms with a ROOM.json entry, oldest first.
func (o *outbox) rooms() ([]string, error) {
	des, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("outbox list: %w", err)
	}
	type item struct {
		room string
		mod  int64
	}
	var items []item
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		var mod int64
		if info, err := de.Info(); err == nil {
			mod = info.ModTime().UnixNano()
		}
		items = append(items, item{strings.TrimSuffix(name, ".json"), mod})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].mod < items[j].mod })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.room
	}
	return out, nil
}

// get reads room's ROOM.json entry; fs.ErrNotExist (wrapped) when it is
// gone.
func (o *outbox) get(room string) (playerdb.Result, error) {
	b, err := os.ReadFile(o.path(room))
	if err != nil {
		return playerdb.Result{}, fmt.Errorf("outbox get %s: %w", room, err)
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil || e.Version != entryVersion || e.Result.Room != room {
		return playerdb.Result{}, fmt.Errorf("outbox get %s: %w: unreadable entry", room, playerdb.ErrInvalid)
	}
	return e.Result, nil
}

// Pending counts the results in the outbox directory dir that no
// Recorder has applied yet (whether or not a live Recorder holds them),
// for tools and tests; it takes no lock and changes nothing.
func Pending(dir string) (int, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("outbox pending: %w", err)
	}
	n := 0
	for _, de := range des {
		name := de.Name()
		switch {
		case de.IsDir() || strings.HasPrefix(name, "."):
		case strings.HasSuffix(name, ".json"):
			n++
		case isSegment(name):
			data, err := os.ReadFile(filepath.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("outbox pending: %w", err)
			}
			var led ledger
			for _, raw := range bytes.Split(data, []byte{'\n'}) {
				led.add(raw)
			}
			n += len(led.open)
		}
	}
	return n, nil
}

// groupSync shares an fsync between the callers waiting at once: do
// returns once an fsync that started after the call has finished, running
// it or waiting for the one running and then for the next, which one of
// the waiters runs for all of them.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // fsyncs started
	done    uint64 // the last one finished
	busy    bool
	err     error // the last one's error
}

func (g *groupSync) do(fsync func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	need := g.started + 1 // one that starts from now on
	for g.done < need {
		if g.busy {
			g.cond.Wait()
			continue
		}
		g.busy = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := fsync()
		g.mu.Lock()
		g.busy, g.done, g.err = false, n, err
		g.cond.Broadcast()
	}
	return g.err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
