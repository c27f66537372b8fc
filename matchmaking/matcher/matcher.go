// Package matcher is arena's matchmaking algorithm: a pool of waiting
// tickets for one game mode and a Tick that forms rooms from it. It is pure:
// no I/O, no goroutines, no clock (the caller passes the time in), no mode
// logic (the dispatcher keeps one Pool per mode).
//
// # The rule
//
// A ticket is one player, or a party that queued together, with one rating.
// A ticket's window grows with the time it has waited:
//
//	window = WindowBase + WindowPerSecond * seconds waited
//
// A room is a set of tickets whose member counts add up to exactly RoomSize
// in which, for every pair of tickets a and b,
//
//	|a.Rating - b.Rating| <= window(a)  and  |a.Rating - b.Rating| <= window(b)
//
// (a gap exactly equal to the window matches). Every room Tick returns
// satisfies this rule at the time passed to Tick; Config.CheckRoom checks it.
// Equivalently: every ticket's window covers its distance to the highest and
// to the lowest rated ticket of its room.
//
// # Parties
//
// A party is one Ticket with Members > 1 and one Rating chosen by the caller
// (PartyRating gives the mean of its members' ratings, the documented
// choice). The rule is checked between tickets, with those ratings; the
// members' own ratings are not looked at. A ticket with Members == RoomSize
// is a room by itself at its first Tick.
//
// # The algorithm
//
// See docs/matchmaking.md. The pool stays sorted by (rating, arrival); Tick
// merges the tickets added since the last tick (sorting only those) and
// removes those taken out, computes every window once, and makes one pass
// over the sorted pool that forms exactly the rooms the seed's rule forms
// (the seed re-sorted and rescanned the pool after every room: O(N²) per
// tick). One tick is O(N + K log K) for N waiting tickets and K added since
// the last tick. Because the rooms are the seed's, a Pool never forms fewer
// rooms nor a larger mean spread than the seed's rule on the same arrivals
// and ticks: it forms the same ones. Config.Tighten adds an optimiser (a
// dynamic programme over the same sorted pool, also linear) that may form
// different rooms when they are at least as many and tighter on that tick.
package matcher

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrBadConfig is returned by Config.Validate for an unusable Config.
	ErrBadConfig = errors.New("bad matcher config")
	// ErrBadTicket is returned by Pool.Add for a ticket that can never be
	// placed: empty ID, Members < 1 or > RoomSize, a rating out of
	// [-MaxRating, MaxRating], or a zero Enqueued time.
	ErrBadTicket = errors.New("bad ticket")
	// ErrDuplicate is returned by Pool.Add when a ticket with the same ID is
	// already waiting in the pool.
	ErrDuplicate = errors.New("ticket already waiting")
	// ErrBadRoom is returned by Config.CheckRoom for a room that breaks the
	// rule.
	ErrBadRoom = errors.New("room breaks the rule")
)

// Limits.
const (
	// MaxRoomSize is the largest RoomSize Validate accepts.
	MaxRoomSize = 64
	// MaxRating bounds ratings (both signs) so that gaps never overflow.
	MaxRating = 1_000_000_000
)

// Config is one mode's matchmaking rule.
type Config struct {
	// RoomSize is the number of players in a room, 2..MaxRoomSize
	// (default 3).
	RoomSize int
	// WindowBase is every ticket's window, in rating points, when it has
	// just joined (default 0: only equal ratings match at once).
	WindowBase float64
	// WindowPerSecond is how many rating points a ticket's window grows per
	// second waited (default 50).
	WindowPerSecond float64
	// Tighten makes each tick also build a plan that minimises spread (see
	// the package doc) and keep it when it forms at least as many rooms as
	// the seed's rule with no larger mean spread on that tick. Off by
	// default: then Tick forms exactly the seed's rooms. See
	// docs/matchmaking.md for what it gains and why it is not the default.
	Tighten bool
}

// DefaultConfig is the seed's rule: rooms of 3, windows 0 + 50 per second.
func DefaultConfig() Config {
	return Config{RoomSize: 3, WindowBase: 0, WindowPerSecond: 50}
}

// Validate reports whether c is usable: RoomSize in 2..MaxRoomSize and both
// window terms finite and not negative. Errors wrap ErrBadConfig.
func (c Config) Validate() error {
	if c.RoomSize < 2 || c.RoomSize > MaxRoomSize {
		return fmt.Errorf("validate matcher config: room size %d not in 2..%d: %w", c.RoomSize, MaxRoomSize, ErrBadConfig)
	}
	if !finiteNonNegative(c.WindowBase) {
		return fmt.Errorf("validate matcher config: window base %v must be finite and >= 0: %w", c.WindowBase, ErrBadConfig)
	}
	if !finiteNonNegative(c.WindowPerSecond) {
		return fmt.Errorf("validate matcher config: window per second %v must be finite and >= 0: %w", c.WindowPerSecond, ErrBadConfig)
	}
	return nil
}

func finiteNonNegative(f float64) bool { return f >= 0 && !math.IsInf(f, 1) }

// Window is the window, in rating points, of a ticket that has waited for
// waited. A negative wait (a ticket enqueued after now) counts as zero.
func (c Config) Window(waited time.Duration) float64 {
	if waited < 0 {
		waited = 0
	}
	return c.WindowBase + c.WindowPerSecond*waited.Seconds()
}

// within is the rule's comparison, used everywhere: a gap matches a window
// when it is not larger than it.
func within(gap int, window float64) bool { return float64(gap) <= window }

// Compatible reports whether tickets a and b may share a room at now: their
// rating gap is within both windows.
func (c Config) Compatible(a, b Ticket, now time.Time) bool {
	gap := a.Rating - b.Rating
	if gap < 0 {
		gap = -gap
	}
	return within(gap, c.Window(now.Sub(a.Enqueued))) && within(gap, c.Window(now.Sub(b.Enqueued)))
}

// CheckRoom reports whether tickets form a valid room at now: distinct IDs,
// member counts adding up to exactly RoomSize, and every pair Compatible.
// Errors wrap ErrBadRoom.
func (c Config) CheckRoom(tickets []Ticket, now time.Time) error {
	members := 0
	seen := make(map[string]bool, len(tickets))
	for i, a := range tickets {
		if seen[a.ID] {
			return fmt.Errorf("check room: ticket %q twice: %w", a.ID, ErrBadRoom)
		}
		seen[a.ID] = true
		members += a.Members
		for _, b := range tickets[i+1:] {
			if !c.Compatible(a, b, now) {
				return fmt.Errorf("check room: tickets %q (%d) and %q (%d) too far apart: %w", a.ID, a.Rating, b.ID, b.Rating, ErrBadRoom)
			}
		}
	}
	if members != c.RoomSize {
		return fmt.Errorf("check room: %d members, want %d: %w", members, c.RoomSize, ErrBadRoom)
	}
	return nil
}

// Ticket is one player, or one party, waiting for a room.
type Ticket struct {
	// ID identifies the ticket in its pool (a player's uuid, or a party id).
	ID string
	// Rating is the player's rating, or the party's aggregate (PartyRating).
	Rating int
	// Members is the number of players on the ticket, 1..RoomSize.
	Members int
	// Enqueued is when the ticket joined; its window grows from then.
	Enqueued time.Time
	// Payload is the caller's, returned untouched in the Room.
	Payload any
}

// PartyRating is the rating a party queues with: the mean of its members'
// ratings, rounded to the nearest integer (halves away from zero). It
// returns 0 for no ratings.
func PartyRating(ratings ...int) int {
	if len(ratings) == 0 {
		return 0
	}
	sum := 0
	for _, r := range ratings {
		sum += r
	}
	return int(math.Round(float64(sum) / float64(len(ratings))))
}

// Room is a room Tick formed.
type Room struct {
	// Tickets are the room's tickets by rating, lowest first (ties by
	// arrival). Their Members add up to the pool's RoomSize.
	Tickets []Ticket
	// Spread is the highest minus the lowest ticket rating in the room.
	Spread int
}

// Players is the number of players in the room (the sum of Members).
func (r Room) Players() int {
	n := 0
	for _, t := range r.Tickets {
		n += t.Members
	}
	return n
}
