package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/arena-game/arena/playerdb"
)

// outbox is a directory of results not yet known to be in the database,
// one file per room (ROOM.json, the JSON of an entry). A file is written
// to a temporary name and renamed into place, so a crash leaves either no
// entry or a whole one; an entry the database did not take is synced to
// the disk (file and directory) before the result is reported pending. Several
// processes may share one directory: applying a result twice changes
// nothing, so they need no lock.
type outbox struct {
	dir string

	// The directory's fsyncs are shared (group sync): every entry renamed
	// into place before a directory fsync starts is covered by it, so
	// results going pending together wait for one or two fsyncs of the
	// directory, not one each.
	dirMu      sync.Mutex
	dirCond    *sync.Cond
	dirStarted uint64 // directory fsyncs started
	dirDone    uint64 // the last one finished
	dirBusy    bool
	dirErr     error // the last one's error
}

// entry is one outbox file.
type entry struct {
	Version int             `json:"v"`
	Result  playerdb.Result `json:"result"`
}

const entryVersion = 1

// rejectedDir holds entries the database refused as malformed (never
// expected: results are checked before they are queued), kept for an
// operator to look at.
const rejectedDir = "rejected"

func openOutbox(dir string) (*outbox, error) {
	if dir == "" {
		return nil, errors.New("open outbox: no directory")
	}
	if err := os.MkdirAll(filepath.Join(dir, rejectedDir), 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	o := &outbox{dir: dir}
	o.dirCond = sync.NewCond(&o.dirMu)
	return o, nil
}

func (o *outbox) path(room string) string { return filepath.Join(o.dir, room+".json") }

// put writes r's entry to a temporary file and renames it into place: from
// then on it survives this process (a crash, a kill). It is not synced to
// the disk yet: call sync before relying on the entry alone (a result
// that stays pending); until then the database commit is what lasts. A
// second put of the same room replaces the first (the same result,
// reported again).
func (o *outbox) put(r playerdb.Result) error {
	b, err := json.Marshal(entry{Version: entryVersion, Result: r})
	if err != nil {
		return fmt.Errorf("outbox put %s: %w", r.Room, err)
	}
	f, err := os.CreateTemp(o.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("outbox put %s: %w", r.Room, err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, o.path(r.Room))
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox put %s: %w", r.Room, werr)
	}
	return nil
}

// sync makes room's entry durable on the disk: the file's data and its
// name in the directory (a directory fsync shared with the entries synced
// at the same time).
func (o *outbox) sync(room string) error {
	f, err := os.Open(o.path(room))
	if err != nil {
		return fmt.Errorf("outbox sync %s: %w", room, err)
	}
	err = f.Sync()
	f.Close()
	if err == nil {
		err = o.syncDir()
	}
	if err != nil {
		return fmt.Errorf("outbox sync %s: %w", room, err)
	}
	return nil
}

// syncDir returns once a directory fsync that started after the call has
// finished: it runs one, or waits for the one running to end and then
// for the next, which one of the waiters runs for all of them.
func (o *outbox) syncDir() error {
	o.dirMu.Lock()
	defer o.dirMu.Unlock()
	need := o.dirStarted + 1 // a sync that starts from now on
	for o.dirDone < need {
		if o.dirBusy {
			o.dirCond.Wait()
			continue
		}
		o.dirBusy = true
		o.dirStarted++
		n := o.dirStarted
		o.dirMu.Unlock()
		err := syncDir(o.dir)
		o.dirMu.Lock()
		o.dirBusy, o.dirDone, o.dirErr = false, n, err
		o.dirCond.Broadcast()
	}
	return o.dirErr
}

// remove deletes room's entry; a missing entry is not an error (another
// process drained it).
func (o *outbox) remove(room string) error {
	if err := os.Remove(o.path(room)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbox remove %s: %w", room, err)
	}
	return nil
}

// reject moves room's entry aside into rejected/.
func (o *outbox) reject(room string) error {
	if err := os.Rename(o.path(room), filepath.Join(o.dir, rejectedDir, room+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("outbox reject %s: %w", room, err)
	}
	return nil
}

// rooms lists the rooms with an entry, oldest first.
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

// get reads room's entry; fs.ErrNotExist (wrapped) when it is gone.
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
