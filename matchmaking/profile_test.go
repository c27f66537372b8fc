package matchmaking

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const yamlProfiles = `
profiles:
  - name: duel
    rosters: [{name: a, size: 1}, {name: b, size: 1}]
    params: {window_base: 100, window_per_second: 10}
    ticket_ttl: 30s
  - name: squads
    function: team_balance
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    max_players: 6
    player_fields: {strings: [region]}
    pools:
      - name: eu
        string_equals: [{field: region, value: eu}]
        double_range: [{field: level, min: 10}]
        tag_present: [ranked]
        created_before: 5s
        created_after: 10m
`

func TestParseProfilesYAMLAndJSON(t *testing.T) {
	ps, err := ParseProfiles([]byte(yamlProfiles), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Profiles) != 2 {
		t.Fatalf("%d profiles", len(ps.Profiles))
	}
	duel, squads := ps.Profiles[0], ps.Profiles[1]
	if duel.Function != FunctionSeed || duel.RoomSize() != 2 || duel.MinPlayers != 2 || duel.MaxPlayers != 2 ||
		*duel.Params.WindowBase != 100 || time.Duration(duel.TicketTTL) != 30*time.Second || len(duel.Pools) != 1 {
		t.Fatalf("duel %+v", duel)
	}
	pl := squads.Pools[0]
	if squads.RoomSize() != 4 || squads.MaxPlayers != 6 || *squads.Params.WindowPerSecond != 50 ||
		pl.StringEquals[0].Value != "eu" || *pl.DoubleRange[0].Min != 10 || pl.DoubleRange[0].Max != nil ||
		time.Duration(pl.CreatedBefore) != 5*time.Second || time.Duration(pl.CreatedAfter) != 10*time.Minute {
		t.Fatalf("squads %+v pool %+v", squads, pl)
	}
	js := `{"profiles":[{"name":"default","rosters":[{"name":"all","size":3}]}]}`
	if ps, err := ParseProfiles([]byte(js), nil); err != nil || ps.Profiles[0].RoomSize() != 3 {
		t.Fatalf("json: %+v %v", ps, err)
	}
}

func TestBadProfileFilesAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		"not yaml":          "profiles: [",
		"unknown field":     `{"profiles":[{"name":"a","colour":"red"}]}`,
		"no profiles":       `{"profiles":[]}`,
		"bad name":          `{"profiles":[{"name":"a b"}]}`,
		"twice":             `{"profiles":[{"name":"a"},{"name":"a"}]}`,
		"unknown function":  `{"profiles":[{"name":"a","function":"mystery"}]}`,
		"room of one":       `{"profiles":[{"name":"a","rosters":[{"name":"x","size":1}]}]}`,
		"room too large":    `{"profiles":[{"name":"a","rosters":[{"name":"x","size":65}]}]}`,
		"min over rosters":  `{"profiles":[{"name":"a","min_players":4}]}`,
		"max under rosters": `{"profiles":[{"name":"a","max_players":2}]}`,
		"negative window":   `{"profiles":[{"name":"a","params":{"window_per_second":-1}}]}`,
		"min over max":      `{"profiles":[{"name":"a","pools":[{"name":"p","double_range":[{"field":"x","min":5,"max":1}]}]}]}`,
		"bad field name":    `{"profiles":[{"name":"a","pools":[{"name":"p","tag_present":["a b"]}]}]}`,
		"pool twice":        `{"profiles":[{"name":"a","pools":[{"name":"p"},{"name":"p"}]}]}`,
		"bad duration":      `{"profiles":[{"name":"a","ticket_ttl":"soon"}]}`,
		"too many pools":    `{"profiles":[{"name":"a","pools":[` + strings.TrimSuffix(strings.Repeat(`{"name":"p"},`, 17), ",") + `]}]}`,
	} {
		_, err := ParseProfiles([]byte(body), nil)
		if !errors.Is(err, ErrBadProfiles) {
			t.Errorf("%s: %v, want ErrBadProfiles", name, err)
		}
	}
	// A plugin function is accepted once configured.
	if _, err := ParseProfiles([]byte(`{"profiles":[{"name":"a","function":"mine"}]}`), []string{"mine"}); err != nil {
		t.Fatalf("configured plugin: %v", err)
	}
}

func TestSearchFieldLimits(t *testing.T) {
	many := map[string]float64{}
	for i := range MaxSearchFields + 1 {
		many[strings.Repeat("d", i+1)] = 1
	}
	for name, sf := range map[string]SearchFields{
		"NaN":             {Doubles: map[string]float64{"x": math.NaN()}},
		"+Inf":            {Doubles: map[string]float64{"x": math.Inf(1)}},
		"-Inf":            {Doubles: map[string]float64{"x": math.Inf(-1)}},
		"too many":        {Doubles: many},
		"long name":       {Strings: map[string]string{strings.Repeat("n", MaxFieldName+1): "v"}},
		"long value":      {Strings: map[string]string{"region": strings.Repeat("v", MaxStringValue+1)}},
		"bad utf8":        {Strings: map[string]string{"region": "\xff"}},
		"tag twice":       {Tags: []string{"a", "a"}},
		"empty tag":       {Tags: []string{""}},
		"space in a name": {Doubles: map[string]float64{"a b": 1}},
	} {
		if err := sf.Validate(); !errors.Is(err, ErrBadSearchFields) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := SearchFields{Doubles: map[string]float64{"level": 3}, Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPoolFilters(t *testing.T) {
	lo, hi := 10.0, 20.0
	pl := Pool{Name: "p",
		DoubleRange:  []DoubleRange{{Field: "level", Min: &lo, Max: &hi}},
		StringEquals: []StringEquals{{Field: "region", Value: "eu"}},
		TagPresent:   []string{"ranked"}}
	for _, tc := range []struct {
		name string
		s    SearchFields
		want bool
	}{
		{"all pass", SearchFields{Doubles: map[string]float64{"level": 10}, Strings: map[string]string{"region": "eu"}, Tags: []string{"x", "ranked"}}, true},
		{"upper bound is inclusive", SearchFields{Doubles: map[string]float64{"level": 20}, Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}, true},
		{"below the range", SearchFields{Doubles: map[string]float64{"level": 9.99}, Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}, false},
		{"other string", SearchFields{Doubles: map[string]float64{"level": 15}, Strings: map[string]string{"region": "us"}, Tags: []string{"ranked"}}, false},
		{"missing double: no match", SearchFields{Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}, false},
		{"missing string: no match", SearchFields{Doubles: map[string]float64{"level": 15}, Tags: []string{"ranked"}}, false},
		{"missing tag: no match", SearchFields{Doubles: map[string]float64{"level": 15}, Strings: map[string]string{"region": "eu"}}, false},
	} {
		if got := pl.admits(&tc.s); got != tc.want {
			t.Errorf("%s: admits = %v", tc.name, got)
		}
	}
	if !(&Pool{Name: "all"}).admits(&SearchFields{}) {
		t.Fatal("a pool without filters admits every ticket")
	}
}

func TestReloadFileKeepsOldProfilesOnError(t *testing.T) {
	m, _ := newTestMatchmaker(t, Config{Tick: time.Hour}, nil)
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "profiles.yaml")
	if err := os.WriteFile(path, []byte(yamlProfiles), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := m.ReloadFile(ctx, path); err != nil || n != 2 {
		t.Fatalf("reload: %d %v", n, err)
	}
	if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: "p1", Score: 1500}, Profile: "duel"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("profiles: [ {name: broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReloadFile(ctx, path); !errors.Is(err, ErrBadProfiles) {
		t.Fatalf("bad file: %v", err)
	}
	ps, _ := m.Profiles(ctx)
	if len(ps.Profiles) != 2 || ps.Profiles[0].Name != "duel" {
		t.Fatalf("profiles after a bad reload: %+v", ps)
	}
	if st := m.Status(ctx, "p1"); st.State != StateQueued || st.Profile != "duel" {
		t.Fatalf("ticket after a bad reload: %+v", st)
	}
	// The default profile is gone since the first reload.
	if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: "p2", Score: 1500}}); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("default after reload: %v", err)
	}
}
