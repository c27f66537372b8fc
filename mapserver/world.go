package mapserver

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/arena-game/arena/internal/ids"
)

//go:embed world/default.json
var defaultWorldJSON []byte

// MaxWorldFile is the largest world file LoadWorld reads.
const MaxWorldFile = 4 << 20

// MaxMapSize bounds a map's width and height, in world units.
const MaxMapSize = 1_000_000

// ErrBadWorld is wrapped by every world validation error.
var ErrBadWorld = errors.New("bad world")

// Point is a position on a map, in world units; (0,0) is the top-left
// corner and x grows to the right, y downwards.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Rect is an axis-aligned rectangle: its top-left corner and size.
type Rect struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Contains reports whether p lies in r (edges included).
func (r Rect) Contains(p Point) bool {
	return p.X >= r.X && p.X <= r.X+r.W && p.Y >= r.Y && p.Y <= r.Y+r.H
}

// Dist returns the distance from p to the nearest point of r (0 inside).
func (r Rect) Dist(p Point) float64 {
	dx := math.Max(math.Max(r.X-p.X, 0), p.X-(r.X+r.W))
	dy := math.Max(math.Max(r.Y-p.Y, 0), p.Y-(r.Y+r.H))
	return math.Hypot(dx, dy)
}

// Portal is a rectangle on a map that leads to another map: a player who
// walks into Rect (or asks to switch to To while within reach of Rect)
// arrives on map To at Arrival.
type Portal struct {
	ID      string `json:"id,omitempty"`
	Rect    Rect   `json:"rect"`
	To      string `json:"to"`
	Arrival Point  `json:"arrival"`
}

// Map is one map of the world.
type Map struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Width   float64  `json:"width"`
	Height  float64  `json:"height"`
	Spawn   Point    `json:"spawn"`
	Portals []Portal `json:"portals"`
}

// InBounds reports whether p lies on m (edges included).
func (m *Map) InBounds(p Point) bool {
	return p.X >= 0 && p.X <= m.Width && p.Y >= 0 && p.Y <= m.Height
}

// PortalAt returns the first portal whose rectangle contains p, or nil.
func (m *Map) PortalAt(p Point) *Portal {
	for i := range m.Portals {
		if m.Portals[i].Rect.Contains(p) {
			return &m.Portals[i]
		}
	}
	return nil
}

// NearestPortalTo returns the portal to map to that is nearest to p and its
// distance, or nil when m has no portal to that map.
func (m *Map) NearestPortalTo(to string, p Point) (*Portal, float64) {
	var best *Portal
	bestD := math.Inf(1)
	for i := range m.Portals {
		if m.Portals[i].To != to {
			continue
		}
		if d := m.Portals[i].Rect.Dist(p); d < bestD {
			best, bestD = &m.Portals[i], d
		}
	}
	return best, bestD
}

// World is the set of maps a map server can host. It is immutable after
// loading and safe for concurrent use.
type World struct {
	Version int    `json:"version"`
	Start   string `json:"start"` // the map a new player enters when none is asked for
	Maps    []*Map `json:"maps"`

	byID map[string]*Map
}

// Map returns the map with id, or nil.
func (w *World) Map(id string) *Map { return w.byID[id] }

// IDs returns the map ids, sorted.
func (w *World) IDs() []string {
	ids := make([]string, 0, len(w.byID))
	for id := range w.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// DefaultWorld returns the world shipped in the binary
// (mapserver/world/default.json): town, forest and cave, linked
// town <-> forest <-> cave and cave -> town.
func DefaultWorld() *World {
	w, err := ParseWorld(defaultWorldJSON)
	if err != nil {
		panic("mapserver: embedded default world is invalid: " + err.Error())
	}
	return w
}

// LoadWorld reads and validates the world file at path (see docs/maps.md
// for the format). An empty path returns DefaultWorld.
func LoadWorld(path string) (*World, error) {
	if path == "" {
		return DefaultWorld(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load world: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load world: %w", err)
	}
	if st.Size() > MaxWorldFile {
		return nil, fmt.Errorf("load world %s: %w: file is %d bytes, the limit is %d", path, ErrBadWorld, st.Size(), MaxWorldFile)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("load world %s: %w", path, err)
	}
	w, err := ParseWorld(b)
	if err != nil {
		return nil, fmt.Errorf("load world %s: %w", path, err)
	}
	return w, nil
}

// ParseWorld decodes and validates a world document. Errors wrap
// ErrBadWorld and name the offending map or portal: an invalid or
// duplicate map id, a size out of (0, MaxMapSize], a spawn point off the
// map or inside a portal, a portal rectangle off its map, a portal to an
// unknown map or to its own map, an arrival point off the target map or
// inside one of its portals (which would bounce the player straight back),
// or a start map that does not exist.
func ParseWorld(b []byte) (*World, error) {
	if len(b) > MaxWorldFile {
		return nil, fmt.Errorf("parse world: %w: %d bytes, the limit is %d", ErrBadWorld, len(b), MaxWorldFile)
	}
	var w World
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("parse world: %w: %v", ErrBadWorld, err)
	}
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("parse world: %w", err)
	}
	return &w, nil
}

func finite(v ...float64) bool {
	for _, f := range v {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

func (w *World) validate() error {
	if len(w.Maps) == 0 {
		return fmt.Errorf("%w: no maps", ErrBadWorld)
	}
	w.byID = make(map[string]*Map, len(w.Maps))
	for i, m := range w.Maps {
		if m == nil {
			return fmt.Errorf("%w: map #%d is null", ErrBadWorld, i)
		}
		if !ids.Valid(m.ID) {
			return fmt.Errorf("%w: map #%d: bad id %q (1-%d of A-Z a-z 0-9 _ -)", ErrBadWorld, i, m.ID, ids.MaxLen)
		}
		if _, dup := w.byID[m.ID]; dup {
			return fmt.Errorf("%w: duplicate map id %q", ErrBadWorld, m.ID)
		}
		w.byID[m.ID] = m
		if m.Name == "" {
			m.Name = m.ID
		}
		if !finite(m.Width, m.Height) || m.Width <= 0 || m.Height <= 0 || m.Width > MaxMapSize || m.Height > MaxMapSize {
			return fmt.Errorf("%w: map %q: size %vx%v out of (0, %d]", ErrBadWorld, m.ID, m.Width, m.Height, MaxMapSize)
		}
		if !finite(m.Spawn.X, m.Spawn.Y) || !m.InBounds(m.Spawn) {
			return fmt.Errorf("%w: map %q: spawn (%v,%v) out of bounds", ErrBadWorld, m.ID, m.Spawn.X, m.Spawn.Y)
		}
		for j, p := range m.Portals {
			r := p.Rect
			if !finite(r.X, r.Y, r.W, r.H) || r.W <= 0 || r.H <= 0 || r.X < 0 || r.Y < 0 || r.X+r.W > m.Width || r.Y+r.H > m.Height {
				return fmt.Errorf("%w: map %q: portal #%d %q: rectangle off the map", ErrBadWorld, m.ID, j, p.ID)
			}
			if r.Contains(m.Spawn) {
				return fmt.Errorf("%w: map %q: spawn inside portal %q", ErrBadWorld, m.ID, p.ID)
			}
		}
	}
	for _, m := range w.Maps {
		for j, p := range m.Portals {
			t := w.byID[p.To]
			if t == nil {
				return fmt.Errorf("%w: map %q: portal #%d %q: unknown target map %q", ErrBadWorld, m.ID, j, p.ID, p.To)
			}
			if t == m {
				return fmt.Errorf("%w: map %q: portal #%d %q leads to its own map", ErrBadWorld, m.ID, j, p.ID)
			}
			if !finite(p.Arrival.X, p.Arrival.Y) || !t.InBounds(p.Arrival) {
				return fmt.Errorf("%w: map %q: portal #%d %q: arrival (%v,%v) out of bounds of %q", ErrBadWorld, m.ID, j, p.ID, p.Arrival.X, p.Arrival.Y, t.ID)
			}
			if q := t.PortalAt(p.Arrival); q != nil {
				return fmt.Errorf("%w: map %q: portal #%d %q: arrival inside portal %q of %q", ErrBadWorld, m.ID, j, p.ID, q.ID, t.ID)
			}
		}
	}
	if w.Start == "" {
		w.Start = w.Maps[0].ID
	}
	if w.byID[w.Start] == nil {
		return fmt.Errorf("%w: start map %q does not exist", ErrBadWorld, w.Start)
	}
	return nil
}
