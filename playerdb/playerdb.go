// Package playerdb keeps what must last about players in a real database:
// players (identity, display name, account), their rating, games, wins and
// losses per profile (a profile is a queue mode), match history with every
// player's rating before and after, and leaderboards.
//
// Two databases are supported behind one type, DB, with the same SQL and
// the same tests: PostgreSQL (a postgres:// or postgresql:// DSN, through
// github.com/jackc/pgx/v5) and an embedded SQLite file (sqlite:PATH or a
// plain path, through modernc.org/sqlite, so no cgo). Open applies the
// versioned schema migrations embedded in the binary and refuses a
// database whose schema is newer than the binary (ErrSchemaNewer).
//
// A room's result is applied with Apply, in one transaction that records
// the match, computes the Elo changes from the ratings it reads under the
// players' row locks and writes them; a result whose room is already
// recorded changes nothing and returns what was stored the first time.
package playerdb

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/safetext"
)

// Player and room ids are arena ids (internal/ids).
var validID = ids.Valid[string]

// DefaultRating is the rating of a player in a profile it has never played.
const DefaultRating = 1500

// DefaultProfile is the profile of results and lookups that name none (the
// queue's default mode).
const DefaultProfile = "default"

// Limits of what the database accepts.
const (
	MaxNameRunes   = 32  // display names
	MaxPhotoLen    = 512 // photo URLs
	MaxProfileLen  = 32  // profiles: 0-32 of [a-z0-9_-]
	MaxPlayers     = 64  // players in one result
	MaxPageLimit   = 100 // rows in one page of history or leaderboard
	MaxBoardOffset = 10000
)

// Sentinel errors. Methods wrap them; callers check with errors.Is and map
// them to protocol codes at the edge.
var (
	// ErrNotFound: no such player (or the player has no rating in the
	// profile asked about).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: an argument is out of range (an id, a name, a profile, a
	// result's players or ranks, a page).
	ErrInvalid = errors.New("invalid")
	// ErrAccountTaken: another player already has that account name.
	ErrAccountTaken = errors.New("account name taken")
	// ErrHasAccount: the player already has an account.
	ErrHasAccount = errors.New("player already has an account")
	// ErrNoAccount: the player is a guest (it has no account, so no
	// password to change).
	ErrNoAccount = errors.New("player has no account")
	// ErrSchemaNewer: the database was migrated by a newer arena.
	ErrSchemaNewer = errors.New("database schema is newer than this binary")
	// ErrUnavailable wraps failures to reach or use the database.
	ErrUnavailable = errors.New("database unavailable")
)

// Player is a player's durable record.
type Player struct {
	ID       string
	Name     string
	Photo    string
	Bot      bool
	Account  string // login name; "" for a guest
	Created  time.Time
	LastSeen time.Time
	// Ratings holds the player's standing per profile it has played (or
	// was given a vouched rating in).
	Ratings map[string]Rating
}

// Rating is a player's standing in one profile.
type Rating struct {
	Profile string
	Rating  int
	Games   int
	Wins    int
	Losses  int // games neither won nor drawn; Games-Wins-Losses drew
	Updated time.Time
}

// RatingIn returns p's rating in profile, DefaultRating if it has none.
func (p Player) RatingIn(profile string) int {
	if r, ok := p.Ratings[NormProfile(profile)]; ok {
		return r.Rating
	}
	return DefaultRating
}

// Totals sums games, wins and losses over every profile.
func (p Player) Totals() (games, wins, losses int) {
	for _, r := range p.Ratings {
		games, wins, losses = games+r.Games, wins+r.Wins, losses+r.Losses
	}
	return
}

// Result is a room's outcome, as a game server reports it.
type Result struct {
	Room    string // the room id; a result is applied once per room
	Game    string // the game (kind) that hosted it, e.g. "fight"
	Profile string // the queue mode the players were matched in; "" is DefaultProfile
	Host    string // the process that hosted it (host:port)
	Started time.Time
	Ended   time.Time
	Reason  string // why it ended, game-defined (e.g. "last_standing")
	Players []PlayerResult
}

// PlayerResult is one player's line in a Result.
type PlayerResult struct {
	UUID  string
	Name  string // display name, used if the player has no record yet and kept in the history
	Photo string
	Bot   bool
	// Rank is the player's place, 1 best; equal ranks drew. Elo scores
	// every pair of players by their ranks.
	Rank  int
	Score float64 // game-defined (the fight's remaining hp)
	Left  bool    // left before the end
}

// RatingChange is one player's rating before and after a result.
type RatingChange struct {
	Before int
	After  int
}

// Applied is what a result changed.
type Applied struct {
	// Ratings maps each player's uuid to its rating change.
	Ratings map[string]RatingChange
	// Duplicate is true when the room had already been recorded: nothing
	// changed and Ratings are the changes recorded the first time.
	Duplicate bool
}

// Match is one recorded result.
type Match struct {
	Room, Game, Profile, Host, Reason string
	Started, Ended                    time.Time
	Players                           []MatchPlayer // best placed first
}

// MatchPlayer is one player's line in a Match.
type MatchPlayer struct {
	ID     string
	Name   string
	Place  int
	Score  float64
	Left   bool
	Before int
	After  int
}

// Entry is one line of a leaderboard.
type Entry struct {
	Place  int // 1 + the number of players rated higher (equal ratings share a place)
	ID     string
	Name   string
	Bot    bool
	Rating int
	Games  int
	Wins   int
	Losses int
}

// CleanName trims a display name and checks it: 1 to 32 characters with
// no control or format characters and no '<' or '>'.
func CleanName(name string) (string, bool) { return CleanNameMax(name, MaxNameRunes) }

// CleanNameMax is CleanName with a limit of max characters (the seed's
// Thrift intake accepts Django's 150; records keep the first 32).
func CleanNameMax(name string, max int) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > max {
		return "", false
	}
	for _, r := range name {
		if safetext.Unsafe(r) || unicode.Is(unicode.Cf, r) || r == '<' || r == '>' {
			return "", false
		}
	}
	return name, true
}

// ValidProfile reports whether s is an acceptable profile: 0 to 32 of
// [a-z0-9_-] ("" means DefaultProfile).
func ValidProfile(s string) bool {
	if len(s) > MaxProfileLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NormProfile maps "" to DefaultProfile.
func NormProfile(s string) string {
	if s == "" {
		return DefaultProfile
	}
	return s
}
