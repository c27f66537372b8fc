package matchmaking

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/matchmaking/matcher"
	"github.com/arena-game/arena/playerdb"
)

// Profile errors.
var (
	// ErrUnknownProfile: a ticket names a profile the profile file lacks.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrBadProfiles: a profile file that does not parse or validate.
	ErrBadProfiles = errors.New("bad profiles")
)

// Limits of a profile file, so that its size, not players, bounds the
// matchmaker's work.
const (
	MaxProfiles        = 64
	MaxPoolsPerProfile = 16
	MaxFiltersPerPool  = 16
	MaxRosters         = 16
	// DefaultProfile is the profile a ticket naming none joins.
	DefaultProfile = "default"
	// DefaultTicketTTL is how long a ticket waits unless its profile or
	// --ticket-ttl says otherwise.
	DefaultTicketTTL = 10 * time.Minute
)

// Built-in match function names.
const (
	FunctionSeed        = "seed"
	FunctionTeamBalance = "team_balance"
	FunctionFirstCome   = "first_come"
)

// Profiles is a profile file: the profiles tickets may name.
type Profiles struct {
	Profiles []Profile `json:"profiles"`
}

// Profile describes one kind of match: who may be picked (pools of
// filters), how many and in which teams (rosters, min and max players),
// and which function groups them, with that function's parameters.
type Profile struct {
	// Name is what tickets and /v1/play name: 1 to 32 of [a-z0-9_-] (the
	// player database keeps ratings per profile under it).
	Name string `json:"name"`
	// Pools select candidates among the profile's tickets; a ticket may be
	// in several. None: one pool of every ticket.
	Pools []Pool `json:"pools,omitempty"`
	// Rosters are the teams of a room; their sizes add up to the players a
	// room starts with. None: one roster "all" of 3 players.
	Rosters []Roster `json:"rosters,omitempty"`
	// MinPlayers is the fewest players a room starts with (default: the
	// rosters' total). MaxPlayers is the most it may hold with backfill
	// (default: MinPlayers).
	MinPlayers int `json:"min_players,omitempty"`
	MaxPlayers int `json:"max_players,omitempty"`
	// Function names the match function: seed (default), team_balance,
	// first_come, or a plugin given with --match-function NAME=PATH.
	Function string `json:"function,omitempty"`
	// Params are the function's parameters.
	Params Params `json:"params"`
	// TicketTTL is how long a ticket of this profile waits before it
	// expires (default --ticket-ttl).
	TicketTTL Duration `json:"ticket_ttl,omitempty"`
	// PlayerFields are the search fields a player may set on its own
	// ticket through /v1/play; every other field is the backend's.
	PlayerFields FieldNames `json:"player_fields"`
	// Game is the game whose servers host the profile's rooms: "fight"
	// (the default) or a game given with --game NAME=PATH.
	Game string `json:"game,omitempty"`
}

// Params are a match function's typed parameters. Built-in functions read
// the fields named for them; a plugin function receives Plugin as it is.
type Params struct {
	// WindowBase and WindowPerSecond are the seed rule's window: base +
	// per second waited (defaults 0 and 50). team_balance uses the same
	// window to decide who may share a room.
	WindowBase      *float64 `json:"window_base,omitempty"`
	WindowPerSecond *float64 `json:"window_per_second,omitempty"`
	// Tighten turns on the seed matcher's spread optimiser.
	Tighten bool `json:"tighten,omitempty"`
	// Plugin is handed to a plugin function untouched (its own JSON).
	Plugin json.RawMessage `json:"plugin,omitempty"`
}

// Roster is one team of a room.
type Roster struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// FieldNames lists search field names by kind.
type FieldNames struct {
	Doubles []string `json:"doubles,omitempty"`
	Strings []string `json:"strings,omitempty"`
	Tags    []string `json:"tags,omitempty"`
}

// Pool is a named set of filters; a ticket is in the pool when it passes
// every filter. A filter on a field the ticket lacks does not pass.
type Pool struct {
	Name         string         `json:"name"`
	DoubleRange  []DoubleRange  `json:"double_range,omitempty"`
	StringEquals []StringEquals `json:"string_equals,omitempty"`
	TagPresent   []string       `json:"tag_present,omitempty"`
	// CreatedBefore keeps tickets created at least this long before the
	// tick (they have waited this long); CreatedAfter keeps tickets created
	// at most this long before the tick. Zero: no bound.
	CreatedBefore Duration `json:"created_before,omitempty"`
	CreatedAfter  Duration `json:"created_after,omitempty"`
}

// DoubleRange passes tickets whose double Field is within [Min, Max]
// (either bound may be absent).
type DoubleRange struct {
	Field string   `json:"field"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// StringEquals passes tickets whose string Field equals Value.
type StringEquals struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// Duration is a time.Duration written as "30s", "10m" in files.
type Duration time.Duration

// UnmarshalJSON reads "1m30s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return fmt.Errorf("duration: want \"30s\" or seconds, got %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// DefaultProfiles is today's behaviour as one profile: the seed's rule,
// rooms of roomSize, windows base + perSecond per second waited.
func DefaultProfiles(roomSize int, base, perSecond float64, tighten bool) Profiles {
	if roomSize == 0 {
		roomSize = 3
	}
	return Profiles{Profiles: []Profile{{
		Name:     DefaultProfile,
		Rosters:  []Roster{{Name: "all", Size: roomSize}},
		Function: FunctionSeed,
		Params:   Params{WindowBase: &base, WindowPerSecond: &perSecond, Tighten: tighten},
	}}}
}

// ParseProfiles reads a profile file, JSON or YAML (unknown fields are
// errors), and validates it. knownFunctions are the plugin functions
// configured besides the built-in ones. Errors wrap ErrBadProfiles.
func ParseProfiles(data []byte, knownFunctions []string) (Profiles, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Profiles{}, fmt.Errorf("parse profiles: %w: %v", ErrBadProfiles, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var ps Profiles
	if err := dec.Decode(&ps); err != nil {
		return Profiles{}, fmt.Errorf("parse profiles: %w: %v", ErrBadProfiles, err)
	}
	if err := ps.Validate(knownFunctions); err != nil {
		return Profiles{}, err
	}
	return ps, nil
}

// LoadProfiles reads and parses the profile file at path.
func LoadProfiles(path string, knownFunctions []string) (Profiles, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Profiles{}, fmt.Errorf("load profiles: %w: %v", ErrBadProfiles, err)
	}
	return ParseProfiles(data, knownFunctions)
}

// Validate checks every profile and fills defaults. Errors wrap
// ErrBadProfiles and name the profile and field.
func (ps *Profiles) Validate(knownFunctions []string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("validate profiles: %w: %s", ErrBadProfiles, fmt.Sprintf(format, a...))
	}
	if len(ps.Profiles) == 0 {
		return bad("no profiles")
	}
	if len(ps.Profiles) > MaxProfiles {
		return bad("%d profiles, at most %d", len(ps.Profiles), MaxProfiles)
	}
	seen := map[string]bool{}
	for i := range ps.Profiles {
		p := &ps.Profiles[i]
		if p.Name == "" || !playerdb.ValidProfile(p.Name) {
			return bad("profile %d: name %q must be 1 to %d of [a-z0-9_-] (ratings are kept per profile)", i, p.Name, playerdb.MaxProfileLen)
		}
		if seen[p.Name] {
			return bad("profile %q twice", p.Name)
		}
		seen[p.Name] = true
		if err := p.validate(knownFunctions); err != nil {
			return bad("profile %q: %v", p.Name, err)
		}
	}
	return nil
}

func (p *Profile) validate(knownFunctions []string) error {
	if p.Function == "" {
		p.Function = FunctionSeed
	}
	if p.Game != "" && !playerdb.ValidProfile(p.Game) {
		return fmt.Errorf("game %q must be 1 to 32 of [a-z0-9_-]", p.Game)
	}
	switch p.Function {
	case FunctionSeed, FunctionTeamBalance, FunctionFirstCome:
	default:
		if !slices.Contains(knownFunctions, p.Function) {
			return fmt.Errorf("function %q is neither built in (seed, team_balance, first_come) nor given with --match-function", p.Function)
		}
	}
	if len(p.Rosters) == 0 {
		p.Rosters = []Roster{{Name: "all", Size: 3}}
	}
	if len(p.Rosters) > MaxRosters {
		return fmt.Errorf("%d rosters, at most %d", len(p.Rosters), MaxRosters)
	}
	total := 0
	names := map[string]bool{}
	for _, r := range p.Rosters {
		if !ids.Valid(r.Name) || names[r.Name] {
			return fmt.Errorf("roster name %q must be a distinct %s", r.Name, ids.Rule)
		}
		names[r.Name] = true
		if r.Size < 1 || r.Size > matcher.MaxRoomSize {
			return fmt.Errorf("roster %q: size %d not in 1..%d", r.Name, r.Size, matcher.MaxRoomSize)
		}
		total += r.Size
	}
	if total < 2 || total > matcher.MaxRoomSize {
		return fmt.Errorf("rosters add up to %d players, want 2..%d", total, matcher.MaxRoomSize)
	}
	if p.MinPlayers == 0 {
		p.MinPlayers = total
	}
	if p.MaxPlayers == 0 {
		p.MaxPlayers = max(p.MinPlayers, total)
	}
	if p.MinPlayers < 2 || p.MinPlayers > total || p.MaxPlayers < total || p.MaxPlayers > matcher.MaxRoomSize {
		return fmt.Errorf("min_players %d and max_players %d: want 2 <= min <= %d (the rosters) <= max <= %d", p.MinPlayers, p.MaxPlayers, total, matcher.MaxRoomSize)
	}
	if p.Params.WindowBase == nil {
		p.Params.WindowBase = new(0.0)
	}
	if p.Params.WindowPerSecond == nil {
		p.Params.WindowPerSecond = new(50.0)
	}
	if err := p.matcherConfig().Validate(); err != nil {
		return err
	}
	if p.TicketTTL < 0 {
		return fmt.Errorf("ticket_ttl %v is negative", time.Duration(p.TicketTTL))
	}
	if len(p.Pools) == 0 {
		p.Pools = []Pool{{Name: "all"}}
	}
	if len(p.Pools) > MaxPoolsPerProfile {
		return fmt.Errorf("%d pools, at most %d", len(p.Pools), MaxPoolsPerProfile)
	}
	pools := map[string]bool{}
	for _, pl := range p.Pools {
		if !ids.Valid(pl.Name) || pools[pl.Name] {
			return fmt.Errorf("pool name %q must be a distinct %s", pl.Name, ids.Rule)
		}
		pools[pl.Name] = true
		if err := pl.validate(); err != nil {
			return fmt.Errorf("pool %q: %v", pl.Name, err)
		}
	}
	for _, names := range [][]string{p.PlayerFields.Doubles, p.PlayerFields.Strings, p.PlayerFields.Tags} {
		if len(names) > MaxSearchFields {
			return fmt.Errorf("player_fields: more than %d names", MaxSearchFields)
		}
		for _, n := range names {
			if !validFieldName(n) {
				return fmt.Errorf("player_fields: %q is not a field name (%s)", n, fieldNameRule)
			}
		}
	}
	return nil
}

func (pl Pool) validate() error {
	if n := len(pl.DoubleRange) + len(pl.StringEquals) + len(pl.TagPresent); n > MaxFiltersPerPool {
		return fmt.Errorf("%d filters, at most %d", n, MaxFiltersPerPool)
	}
	for _, f := range pl.DoubleRange {
		if !validFieldName(f.Field) {
			return fmt.Errorf("double_range field %q: %s", f.Field, fieldNameRule)
		}
		for _, b := range []*float64{f.Min, f.Max} {
			if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
				return fmt.Errorf("double_range %q: bounds must be finite", f.Field)
			}
		}
		if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
			return fmt.Errorf("double_range %q: min %v > max %v", f.Field, *f.Min, *f.Max)
		}
	}
	for _, f := range pl.StringEquals {
		if !validFieldName(f.Field) || len(f.Value) > MaxStringValue {
			return fmt.Errorf("string_equals %q: field %s, value up to %d bytes", f.Field, fieldNameRule, MaxStringValue)
		}
	}
	for _, t := range pl.TagPresent {
		if !validFieldName(t) {
			return fmt.Errorf("tag_present %q: %s", t, fieldNameRule)
		}
	}
	if pl.CreatedBefore < 0 || pl.CreatedAfter < 0 {
		return errors.New("created_before and created_after are durations >= 0")
	}
	return nil
}

// RoomSize is the number of players a room of p starts with.
func (p *Profile) RoomSize() int {
	n := 0
	for _, r := range p.Rosters {
		n += r.Size
	}
	return n
}

// matcherConfig is the seed rule's configuration for p's rooms.
func (p *Profile) matcherConfig() matcher.Config {
	return matcher.Config{RoomSize: p.RoomSize(), WindowBase: *p.Params.WindowBase, WindowPerSecond: *p.Params.WindowPerSecond, Tighten: p.Params.Tighten}
}

// admits reports whether t passes pl's static filters (search fields;
// the time bounds are checked by the pool's gate).
func (pl *Pool) admits(s *SearchFields) bool {
	for _, f := range pl.DoubleRange {
		v, ok := s.Doubles[f.Field]
		if !ok || (f.Min != nil && v < *f.Min) || (f.Max != nil && v > *f.Max) {
			return false
		}
	}
	for _, f := range pl.StringEquals {
		if v, ok := s.Strings[f.Field]; !ok || v != f.Value {
			return false
		}
	}
	for _, tag := range pl.TagPresent {
		if !slices.Contains(s.Tags, tag) {
			return false
		}
	}
	return true
}
