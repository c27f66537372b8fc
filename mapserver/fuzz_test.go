package mapserver

import (
	"encoding/json"
	"math"
	"testing"
)

func FuzzParseClientMsg(f *testing.F) {
	for _, s := range []string{
		`{"type":"move","x":1,"y":2}`, `{"type":"switch","map":"forest"}`, `{"type":"ping"}`,
		`{"type":"move","x":1e308,"y":-1e308}`, `{}`, `[]`, `null`, `{"type":"move","x":"1"}`,
		"{\"type\":\"move\",\"x\":1,\"y\":2,\"id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseClientMsg(b)
		if err != nil {
			return
		}
		switch m.Type {
		case msgMove:
			if m.X == nil || m.Y == nil || math.IsNaN(*m.X) || math.IsInf(*m.Y, 0) {
				t.Fatalf("accepted a bad move %q", b)
			}
		case msgSwitch:
			if m.Map == "" {
				t.Fatalf("accepted a switch without a map %q", b)
			}
		case "":
			t.Fatalf("accepted a message without a type %q", b)
		}
	})
}

func FuzzParseWorld(f *testing.F) {
	f.Add(defaultWorldJSON)
	f.Add([]byte(`{"maps":[{"id":"a","width":10,"height":10,"spawn":{"x":1,"y":1}}]}`))
	f.Add([]byte(`{"maps":[{"id":"a","width":10,"height":10,"spawn":{"x":1,"y":1},"portals":[{"rect":{"x":8,"y":8,"w":2,"h":2},"to":"a","arrival":{"x":1,"y":1}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWorld(b)
		if err != nil {
			return
		}
		if w.Map(w.Start) == nil {
			t.Fatal("start map missing")
		}
		for _, m := range w.Maps {
			if !m.InBounds(m.Spawn) || m.PortalAt(m.Spawn) != nil {
				t.Fatalf("map %q: bad spawn accepted", m.ID)
			}
			for _, p := range m.Portals {
				to := w.Map(p.To)
				if to == nil || to == m || !to.InBounds(p.Arrival) || to.PortalAt(p.Arrival) != nil {
					t.Fatalf("map %q: bad portal accepted: %+v", m.ID, p)
				}
			}
		}
	})
}

// FuzzCanonicalMove checks the fast path for moves against encoding/json:
// whatever it accepts, the full decoder reads the same way.
func FuzzCanonicalMove(f *testing.F) {
	for _, s := range []string{
		`{"type":"move","x":1,"y":2}`, `{"type":"move","x":-0.5,"y":1e3}`, `{"type":"move","x":01,"y":2}`,
		`{"type":"move","x":1,"y":2,"x":3}`, `{"type":"move","x":1e999,"y":2}`, `{"type":"move","x":1.,"y":2}`,
		`{"type":"move","x":-,"y":2}`, `{"type":"move","x":1,"y":2} `, `{"type":"move","x":0x10,"y":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, y, ok := parseCanonicalMove(b)
		if !ok {
			return
		}
		var m clientMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("fast path accepted %q, json refuses: %v", b, err)
		}
		if m.Type != msgMove || m.X == nil || m.Y == nil || *m.X != x || *m.Y != y {
			t.Fatalf("%q: fast path %v,%v; json %+v", b, x, y, m)
		}
	})
}
