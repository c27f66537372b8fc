package matchmaking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Director errors.
var (
	// ErrFetcherExists: a profile already has a FetchMatches stream.
	ErrFetcherExists = errors.New("profile already fetched by another director")
	// ErrUnknownMatch: AssignTickets names no match waiting for one.
	ErrUnknownMatch = errors.New("no such match waiting for an assignment")
	// ErrBadConnection: an assignment's connection string is empty, over
	// 512 bytes or holds control characters.
	ErrBadConnection = errors.New("bad connection string")
	// ErrNotAssigned: the director did not assign a fetched match in time
	// (or went away); its tickets go back to the queue.
	ErrNotAssigned = errors.New("match not assigned by the director")
)

// DirectedMatch is a match handed to a director instead of arena's fleet.
type DirectedMatch struct {
	ID      string
	Profile string
	Players []Player
	Teams   []Team
}

// Director is director mode: a studio that hosts its own game servers
// fetches a profile's matches (Fetch, the gRPC FetchMatches stream) and
// assigns each a connection string (Assign, AssignTickets). While a
// profile has a fetcher, its rooms go to it instead of the fleet; the
// players get the connection on /v1/play and WatchAssignments as they get
// an arena room. A match not assigned within AssignTimeout (or whose
// fetcher went away) fails, and its tickets go back to the queue with
// their waiting time.
type Director struct {
	AssignTimeout time.Duration

	mu       sync.Mutex
	fetchers map[string]chan DirectedMatch
	pending  map[string]chan string // match id -> its connection
}

// NewDirector returns a director with no fetchers.
func NewDirector(assignTimeout time.Duration) *Director {
	if assignTimeout <= 0 {
		assignTimeout = 30 * time.Second
	}
	return &Director{AssignTimeout: assignTimeout, fetchers: map[string]chan DirectedMatch{}, pending: map[string]chan string{}}
}

// Fetch makes the caller profile's director until stop is called: the
// profile's matches arrive on the channel (64 may wait; a match that
// finds it full fails at once).
func (d *Director) Fetch(profile string) (<-chan DirectedMatch, func(), error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.fetchers[profile]; ok {
		return nil, nil, fmt.Errorf("fetch matches of %q: %w", profile, ErrFetcherExists)
	}
	ch := make(chan DirectedMatch, 64)
	d.fetchers[profile] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			d.mu.Lock()
			if d.fetchers[profile] == ch {
				delete(d.fetchers, profile)
			}
			d.mu.Unlock()
		})
	}, nil
}

// Assign gives a fetched match its connection string.
func (d *Director) Assign(matchID, connection string) error {
	if connection == "" || len(connection) > 512 || strings.IndexFunc(connection, unicode.IsControl) >= 0 {
		return fmt.Errorf("assign match %s: %w", matchID, ErrBadConnection)
	}
	d.mu.Lock()
	ch, ok := d.pending[matchID]
	delete(d.pending, matchID)
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("assign match %s: %w", matchID, ErrUnknownMatch)
	}
	ch <- connection // buffered: never blocks
	return nil
}

// Handoff returns a Handoff that sends the rooms of profiles with a
// fetcher to it and the others to next.
func (d *Director) Handoff(next Handoff) Handoff {
	return func(ctx context.Context, fr FormedRoom) (map[string]MatchMsg, error) {
		d.mu.Lock()
		fetcher, ok := d.fetchers[fr.Profile]
		if !ok {
			d.mu.Unlock()
			return next(ctx, fr)
		}
		id := "m" + randomID()
		done := make(chan string, 1)
		d.pending[id] = done
		d.mu.Unlock()
		forget := func() {
			d.mu.Lock()
			delete(d.pending, id)
			d.mu.Unlock()
		}
		select {
		case fetcher <- DirectedMatch{ID: id, Profile: fr.Profile, Players: fr.Players, Teams: fr.Teams}:
		default:
			forget()
			return nil, fmt.Errorf("direct match %s: %w: the director is 64 matches behind", id, ErrNotAssigned)
		}
		t := time.NewTimer(d.AssignTimeout)
		defer t.Stop()
		select {
		case conn := <-done:
			out := make(map[string]MatchMsg, len(fr.Players))
			for _, p := range fr.Players {
				out[p.UUID] = MatchMsg{Type: "match", Room: id, Fight: conn, Connection: conn, Players: fr.Players, Profile: fr.Profile, Mode: fr.Profile}
			}
			return out, nil
		case <-t.C:
			forget()
			return nil, fmt.Errorf("direct match %s: %w within %v", id, ErrNotAssigned, d.AssignTimeout)
		case <-ctx.Done():
			forget()
			return nil, fmt.Errorf("direct match %s: %w: %v", id, ErrNotAssigned, ctx.Err())
		}
	}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
