package mapserver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultWorldIsLinked(t *testing.T) {
	w := DefaultWorld()
	if len(w.Maps) < 3 || w.Start != "town" {
		t.Fatalf("default world: %d maps, start %q", len(w.Maps), w.Start)
	}
	links := map[string]bool{}
	for _, m := range w.Maps {
		for _, p := range m.Portals {
			links[m.ID+">"+p.To] = true
		}
	}
	for _, l := range []string{"town>forest", "forest>town", "forest>cave", "cave>forest", "cave>town"} {
		if !links[l] {
			t.Errorf("default world lacks portal %s", l)
		}
	}
	if w.Map("nowhere") != nil || w.Map("town") == nil {
		t.Fatal("Map lookup")
	}
}

func TestLoadWorldFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.json")
	doc := `{"maps":[{"id":"a","width":10,"height":10,"spawn":{"x":1,"y":1},
		"portals":[{"rect":{"x":8,"y":8,"w":2,"h":2},"to":"b","arrival":{"x":5,"y":5}}]},
		{"id":"b","name":"Bee","width":10,"height":10,"spawn":{"x":5,"y":5}}]}`
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWorld(p)
	if err != nil {
		t.Fatal(err)
	}
	if w.Start != "a" || w.Map("a").Name != "a" || w.Map("b").Name != "Bee" {
		t.Fatalf("loaded %+v", w)
	}
	if _, err := LoadWorld(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
	if w, err := LoadWorld(""); err != nil || w.Map("town") == nil {
		t.Fatalf("empty path: %v", err)
	}
}

func TestParseWorldRejects(t *testing.T) {
	m := func(id, extra string) string {
		return `{"id":"` + id + `","width":100,"height":100,"spawn":{"x":50,"y":50}` + extra + `}`
	}
	portal := func(to string, rect string, arr string) string {
		return `,"portals":[{"id":"p","rect":` + rect + `,"to":"` + to + `","arrival":` + arr + `}]`
	}
	okRect, okArr := `{"x":90,"y":90,"w":10,"h":10}`, `{"x":10,"y":10}`
	cases := map[string]string{
		"not json":              `{`,
		"no maps":               `{"maps":[]}`,
		"null map":              `{"maps":[null]}`,
		"bad id":                `{"maps":[` + m("a b", "") + `]}`,
		"empty id":              `{"maps":[` + m("", "") + `]}`,
		"long id":               `{"maps":[` + m(strings.Repeat("a", 65), "") + `]}`,
		"duplicate ids":         `{"maps":[` + m("a", "") + `,` + m("a", "") + `]}`,
		"zero size":             `{"maps":[{"id":"a","width":0,"height":10,"spawn":{"x":0,"y":0}}]}`,
		"huge size":             `{"maps":[{"id":"a","width":1e9,"height":10,"spawn":{"x":0,"y":0}}]}`,
		"spawn out of bounds":   `{"maps":[{"id":"a","width":10,"height":10,"spawn":{"x":11,"y":5}}]}`,
		"spawn negative":        `{"maps":[{"id":"a","width":10,"height":10,"spawn":{"x":-1,"y":5}}]}`,
		"unknown portal target": `{"maps":[` + m("a", portal("zz", okRect, okArr)) + `]}`,
		"portal to itself":      `{"maps":[` + m("a", portal("a", okRect, okArr)) + `]}`,
		"portal off map":        `{"maps":[` + m("a", portal("b", `{"x":95,"y":95,"w":10,"h":10}`, okArr)) + `,` + m("b", "") + `]}`,
		"portal empty rect":     `{"maps":[` + m("a", portal("b", `{"x":5,"y":5,"w":0,"h":10}`, okArr)) + `,` + m("b", "") + `]}`,
		"spawn in portal":       `{"maps":[` + m("a", portal("b", `{"x":40,"y":40,"w":20,"h":20}`, okArr)) + `,` + m("b", "") + `]}`,
		"arrival out of bounds": `{"maps":[` + m("a", portal("b", okRect, `{"x":500,"y":10}`)) + `,` + m("b", "") + `]}`,
		"arrival in portal": `{"maps":[` + m("a", portal("b", okRect, `{"x":95,"y":95}`)) + `,` +
			m("b", portal("a", okRect, okArr)) + `]}`,
		"unknown start": `{"start":"zz","maps":[` + m("a", "") + `]}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWorld([]byte(doc))
			if !errors.Is(err, ErrBadWorld) {
				t.Fatalf("ParseWorld(%s) = %v, want ErrBadWorld", doc, err)
			}
		})
	}
}

func TestRectGeometry(t *testing.T) {
	r := Rect{X: 10, Y: 10, W: 10, H: 10}
	if !r.Contains(Point{10, 10}) || !r.Contains(Point{20, 20}) || r.Contains(Point{21, 15}) {
		t.Fatal("Contains")
	}
	if d := r.Dist(Point{15, 15}); d != 0 {
		t.Fatalf("inside distance %v", d)
	}
	if d := r.Dist(Point{23, 24}); d != 5 {
		t.Fatalf("corner distance %v, want 5", d)
	}
}
