package memcached

import (
	"strconv"
	"sync"
	"time"
)

// cache is the item table: a map plus one LRU list, under one mutex, with
// memcached's store semantics (add, replace, append, prepend, cas, incr and
// decr, touch, flush_all, expiry) and a memory limit enforced by evicting
// the least recently used items.
//
// An item's value is never changed in place once stored: every change stores
// a new slice, so a reader may keep the slice it got after the lock is
// released.
type cache struct {
	mu      sync.Mutex
	items   map[string]*entry
	head    *entry // most recently used
	tail    *entry // least recently used
	used    int64  // bytes by itemSize, over all items
	limit   int64
	maxItem int64
	casSeq  uint64
	now     func() time.Time
	// flushAt is memcached's oldest_live in unix seconds: from then on,
	// items stored at or before it are gone. 0: no flush_all yet.
	flushAt int64
	// started is when memcached would count its start (62 s before the
	// real one); an absolute time before it is in the past.
	started  int64
	evicted  uint64
	reclaims uint64 // expired or flushed items removed
}

type entry struct {
	key        string
	value      []byte
	flags      uint32
	exptime    int64 // unix seconds; 0: never
	stored     int64 // unix seconds of the store, for delayed flush_all
	cas        uint64
	size       int64
	prev, next *entry
}

// storeResult is a storage command's outcome, answered as memcached does.
type storeResult uint8

const (
	stored storeResult = iota
	notStored
	exists
	notFound
)

func (r storeResult) reply() string {
	switch r {
	case stored:
		return replyStored
	case notStored:
		return replyNotStored
	case exists:
		return replyExists
	default:
		return replyNotFound
	}
}

func newCache(limit, maxItem int64, now func() time.Time) *cache {
	return &cache{items: make(map[string]*entry), limit: limit, maxItem: maxItem, now: now, started: now().Unix() - 62}
}

// itemSize is memcached's size of an item on 64-bit Linux with CAS on: a
// 48-byte header, the key and its NUL, 4 bytes of flags when they are not
// zero, the value with its "\r\n", and the 8-byte CAS. memcached refuses an
// item whose size is over its item size limit (-I, 1 MiB by default); the
// memory limit counts items by the same size.
func itemSize(nkey, vlen int, flags uint32) int64 {
	n := int64(48 + nkey + 1 + vlen + 2 + 8)
	if flags != 0 {
		n += 4
	}
	return n
}

// expiry turns a protocol expiry time into unix seconds (0: never): 0 is
// never, a negative time is already expired, up to 30 days is relative to
// now, above that is an absolute unix time. An absolute time at or before
// now is expired.
func expiry(exptime int32, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime > relativeMax:
		if int64(exptime) <= now {
			return 1
		}
		return int64(exptime)
	default:
		return now + int64(exptime)
	}
}

// live returns the item at key when it has not expired or been flushed;
// a dead one is removed. Callers hold c.mu.
func (c *cache) live(key []byte, now int64) *entry {
	e := c.items[string(key)]
	if e == nil {
		return nil
	}
	if (e.exptime != 0 && e.exptime <= now) || (c.flushAt != 0 && now >= c.flushAt && e.stored <= c.flushAt) {
		c.unlink(e)
		c.reclaims++
		return nil
	}
	return e
}

func (c *cache) unlink(e *entry) {
	delete(c.items, e.key)
	c.used -= e.size
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *cache) pushFront(e *entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *cache) bump(e *entry) {
	if c.head == e {
		return
	}
	// Unlink from the list only (the map and the byte count stay).
	e.prev.next = e.next
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	c.pushFront(e)
}

// link stores e under its key in place of old (which may be nil), giving it
// a new CAS and evicting least recently used items until the memory limit
// holds. e.size must be within the limit (see fits). Callers hold c.mu.
func (c *cache) link(e *entry, old *entry, now int64) {
	if old != nil {
		c.unlink(old)
	}
	for c.used+e.size > c.limit && c.tail != nil {
		c.unlink(c.tail)
		c.evicted++
	}
	c.casSeq++
	e.cas = c.casSeq
	e.stored = now
	c.items[e.key] = e
	c.used += e.size
	c.pushFront(e)
}

// admit says whether an item of this size can be stored at all: "" if so,
// otherwise memcached's reply (over the item size limit, or over the whole
// memory limit so that no eviction can make room).
func (c *cache) admit(nkey, vlen int, flags uint32) string {
	n := itemSize(nkey, vlen, flags)
	switch {
	case n > c.maxItem:
		return replyTooLarge
	case n > c.limit:
		return replyOutOfMemory
	}
	return ""
}

// fits reports whether an item of n bytes may be linked.
func (c *cache) fits(n int64) bool { return n <= c.maxItem && n <= c.limit }

// refuse is what memcached does to a set it cannot allocate: the old item
// goes, so that a stale value does not outlive a failed set.
func (c *cache) refuse(o op, key []byte) {
	if o != opSet {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.live(key, c.now().Unix()); e != nil {
		c.unlink(e)
	}
}

// store runs a storage command whose data block arrived intact and whose
// size admit accepted. value is kept (not copied).
func (c *cache) store(o op, key []byte, flags uint32, exptime int32, value []byte, cas uint64) storeResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().Unix()
	old := c.live(key, now)
	e := &entry{value: value, flags: flags, exptime: expiry(exptime, now)}
	if old == nil {
		switch o {
		case opCAS:
			return notFound
		case opReplace, opAppend, opPrepend:
			return notStored
		}
		e.key = string(key)
		e.size = itemSize(len(key), len(value), flags)
		c.link(e, nil, now)
		return stored
	}
	switch o {
	case opAdd:
		c.bump(old)
		return notStored
	case opCAS:
		if cas == 0 || cas != old.cas {
			return exists
		}
	case opAppend, opPrepend:
		if !c.fits(itemSize(len(key), len(old.value)+len(value), old.flags)) {
			return notStored
		}
		joined := make([]byte, 0, len(old.value)+len(value))
		if o == opAppend {
			joined = append(append(joined, old.value...), value...)
		} else {
			joined = append(append(joined, value...), old.value...)
		}
		e.value, e.flags, e.exptime = joined, old.flags, old.exptime
	}
	e.key = old.key
	e.size = itemSize(len(e.key), len(e.value), e.flags)
	c.link(e, old, now)
	return stored
}

// get looks key up for the get family: touch sets its expiry first (gat).
// The value slice may be kept.
func (c *cache) get(key []byte, touch bool, exptime int32) (value []byte, flags uint32, cas uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().Unix()
	e := c.live(key, now)
	if e == nil {
		return nil, 0, 0, false
	}
	if touch {
		e.exptime = expiry(exptime, now)
	}
	c.bump(e)
	return e.value, e.flags, e.cas, true
}

// touch sets key's expiry; false if there is no such item.
func (c *cache) touch(key []byte, exptime int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().Unix()
	e := c.live(key, now)
	if e == nil {
		return false
	}
	e.exptime = expiry(exptime, now)
	c.bump(e)
	return true
}

// remove deletes key; false if there was no such item.
func (c *cache) remove(key []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.live(key, c.now().Unix())
	if e == nil {
		return false
	}
	c.unlink(e)
	return true
}

// flush is flush_all, as memcached does it. With no delay (zero or less)
// every item goes now. With a delay (seconds, or an absolute unix time as
// for expiry) every item stored before that moment goes when it comes; one
// second or less is now, and an absolute time before the server started
// cancels a pending flush and flushes nothing. A later flush_all replaces a
// pending one. (memcached also spares an item read more than a minute after
// it was stored; this server goes by the store time alone.)
func (c *cache) flush(delay int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().Unix()
	oldest := now - 1
	if delay > 0 {
		if delay > relativeMax && int64(delay) <= c.started {
			c.flushAt = 0
			c.casSeq++
			return
		}
		oldest = expiry(delay, now) - 1
	}
	c.flushAt = oldest
	if oldest <= now {
		// Due now: memcached takes a CAS id and treats every item with a
		// smaller one as gone.
		c.casSeq++
		clear(c.items)
		c.head, c.tail, c.used = nil, nil, 0
	}
}

// deltaResult is incr/decr's outcome besides a new value.
type deltaResult uint8

const (
	deltaOK deltaResult = iota
	deltaNotFound
	deltaNonNumeric
	deltaNoMemory
)

// delta is incr/decr with memcached's semantics: the value must read as a
// decimal 64-bit unsigned number (leading white space and a sign allowed, the
// number ends at white space); incr wraps at 2^64, decr stops at 0. A result
// no longer than the old value replaces it padded with spaces to the same
// length (memcached rewrites the item in place); a longer one replaces it
// exactly. Flags and expiry stay; the CAS is new.
func (c *cache) delta(key []byte, incr bool, d uint64, out []byte) ([]byte, deltaResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().Unix()
	e := c.live(key, now)
	if e == nil {
		return out, deltaNotFound
	}
	if len(e.value) == 0 {
		return out, deltaNonNumeric
	}
	v, ok := safeStrtoull(e.value)
	if !ok {
		return out, deltaNonNumeric
	}
	if incr {
		v += d
	} else if d > v {
		v = 0
	} else {
		v -= d
	}
	out = strconv.AppendUint(out, v, 10)
	n := len(out)
	var nv []byte
	if n <= len(e.value) {
		nv = make([]byte, len(e.value))
		copy(nv, out)
		for i := n; i < len(nv); i++ {
			nv[i] = ' '
		}
	} else {
		nv = append([]byte(nil), out...)
	}
	ne := &entry{key: e.key, value: nv, flags: e.flags, exptime: e.exptime}
	ne.size = itemSize(len(ne.key), len(nv), ne.flags)
	if !c.fits(ne.size) {
		return out, deltaNoMemory
	}
	c.link(ne, e, now)
	return out, deltaOK
}

// stats returns the item count, bytes used and counters.
func (c *cache) stats() (items int, used int64, evicted, reclaimed uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.used, c.evicted, c.reclaims
}
