package playerdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// CacheTTL is how long a cached player record lives. It bounds how stale a
// cached rating can be when an invalidation was lost (memcached down while
// a result was applied, or a read racing the write).
const CacheTTL = 30 * time.Second

// Cache is the player database with player records read through
// memcached: Player is served from the cache on a hit, and from the
// database on a miss (or when the cache fails or is slow), putting the
// record back in the cache. The methods that change a player's record
// drop its cached copy; every other method is the database's. The second
// from which a player's tokens are accepted (TokensValidFrom) is not part
// of the cached record: it is always read from the database, so a revocation
// holds from the next request whatever the cache holds. Losing the
// cache loses nothing: the database holds every record. Safe for
// concurrent use.
type Cache struct {
	*DB
	st store.Store
	// timeout bounds each cache operation, so a stalled memcached slows
	// a read by at most this much before the database answers.
	timeout time.Duration
}

// NewCache returns a read-through cache of db's player records in st
// (already prefixed).
func NewCache(db *DB, st store.Store) *Cache {
	return &Cache{DB: db, st: st, timeout: 250 * time.Millisecond}
}

// cacheKey is the memcached key of a player's cached record. The version
// in it changes whenever cachedPlayer's encoding does.
func cacheKey(id string) string { return "pdb1:player:" + id }

// cachedPlayer is the JSON form of a Player in memcached.
type cachedPlayer struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Photo    string            `json:"photo,omitempty"`
	Bot      bool              `json:"bot,omitempty"`
	Account  string            `json:"account,omitempty"`
	Created  int64             `json:"created"`
	LastSeen int64             `json:"seen"`
	Ratings  map[string]Rating `json:"ratings"`
}

// Player returns id's record: from the cache when it holds it, else from
// the database (ErrNotFound when there is none), filling the cache.
func (c *Cache) Player(ctx context.Context, id string) (Player, error) {
	if !validID(id) {
		return Player{}, fmt.Errorf("get player: %w", ErrNotFound)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	var cp cachedPlayer
	_, err := store.GetJSON(cctx, c.st, cacheKey(id), &cp)
	cancel()
	if err == nil && cp.ID == id {
		return Player{ID: cp.ID, Name: cp.Name, Photo: cp.Photo, Bot: cp.Bot, Account: cp.Account,
			Created: fromMS(cp.Created), LastSeen: fromMS(cp.LastSeen), Ratings: cp.Ratings}, nil
	}
	p, err := c.DB.Player(ctx, id)
	if err != nil {
		return Player{}, err
	}
	c.put(ctx, p)
	return p, nil
}

// put stores p in the cache (best effort).
func (c *Cache) put(ctx context.Context, p Player) {
	b, err := json.Marshal(cachedPlayer{ID: p.ID, Name: p.Name, Photo: p.Photo, Bot: p.Bot, Account: p.Account,
		Created: ms(p.Created), LastSeen: ms(p.LastSeen), Ratings: p.Ratings})
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_ = c.st.Set(cctx, &store.Item{Key: cacheKey(p.ID), Value: b, TTL: CacheTTL})
}

// Invalidate drops the cached records of ids, so the next read comes from
// the database. It returns the first error; a record it could not drop
// lives at most CacheTTL.
func (c *Cache) Invalidate(ctx context.Context, ids ...string) error {
	var first error
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.st.Delete(cctx, cacheKey(id))
		cancel()
		if err != nil && !errors.Is(err, store.ErrNotFound) && first == nil {
			first = fmt.Errorf("invalidate cached player %s: %w", id, err)
		}
	}
	return first
}

// EnsurePlayer is DB.EnsurePlayer, dropping the player's cached record.
func (c *Cache) EnsurePlayer(ctx context.Context, p NewPlayer) (Player, error) {
	out, err := c.DB.EnsurePlayer(ctx, p)
	_ = c.Invalidate(ctx, p.ID)
	return out, err
}

// SetRating is DB.SetRating, dropping the player's cached record.
func (c *Cache) SetRating(ctx context.Context, p NewPlayer, profile string, rating int) error {
	err := c.DB.SetRating(ctx, p, profile, rating)
	_ = c.Invalidate(ctx, p.ID)
	return err
}

// ClaimAccount is DB.ClaimAccount, dropping the player's cached record.
func (c *Cache) ClaimAccount(ctx context.Context, id, account, hash string) error {
	err := c.DB.ClaimAccount(ctx, id, account, hash)
	_ = c.Invalidate(ctx, id)
	return err
}
