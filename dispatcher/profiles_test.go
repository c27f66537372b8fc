package dispatcher

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/matchmaking"
)

// --profiles is read again on POST /v1/profiles/reload (operator) and on
// SIGHUP; a file that does not parse keeps the profiles in use and the
// error is answered.
func TestProfilesReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profiles.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("profiles: [{name: default}, {name: duel, rosters: [{name: a, size: 1}, {name: b, size: 1}]}]")
	td := newTestDispatcher(t, func(c *Config) { c.ProfilesFile = file })
	names := func() []string {
		var ps matchmaking.Profiles
		if code := td.call(t, "GET", "/v1/profiles", "", nil, &ps); code != 200 {
			t.Fatalf("GET /v1/profiles: %d", code)
		}
		var out []string
		for _, p := range ps.Profiles {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(); len(got) != 2 || got[1] != "duel" {
		t.Fatalf("profiles %v", got)
	}
	write("profiles: [{name: default}, {name: squads, rosters: [{name: a, size: 2}, {name: b, size: 2}]}]")
	if code := td.call(t, "POST", "/v1/profiles/reload", "", nil, nil); code != 401 {
		t.Fatalf("reload without the operator token: %d", code)
	}
	if code := td.call(t, "POST", "/v1/profiles/reload", tOperator, nil, nil); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	if got := names(); len(got) != 2 || got[1] != "squads" {
		t.Fatalf("after reload %v", got)
	}
	write("profiles: [{name: default, rosters: [{name: a, size: 99}]}]")
	var e APIError
	if code := td.call(t, "POST", "/v1/profiles/reload", tOperator, nil, &e); code != 422 || e.Code != "bad_profiles" {
		t.Fatalf("a bad file: %d %+v", code, e)
	}
	if got := names(); len(got) != 2 || got[1] != "squads" {
		t.Fatalf("a bad file replaced the profiles: %v", got)
	}
	// SIGHUP (this process: the test dispatcher catches it while it runs).
	write("profiles: [{name: default}, {name: trio}]")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "the SIGHUP reload", func() bool { got := names(); return len(got) == 2 && got[1] == "trio" })
}

// A player sets the search fields its profile allows on /v1/play, and
// pools filter on them: players of two regions are matched by region.
func TestPlayerSearchFieldsSelectPools(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profiles.yaml")
	if err := os.WriteFile(file, []byte(`profiles:
  - name: default
    rosters: [{name: a, size: 1}, {name: b, size: 1}]
    player_fields: {strings: [region]}
    pools:
      - {name: eu, string_equals: [{field: region, value: eu}]}
      - {name: us, string_equals: [{field: region, value: us}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	td := newTestDispatcher(t, func(c *Config) { c.ProfilesFile = file })
	ctx := tctx(t)
	type player struct {
		cl     *wsconn.Client
		uuid   string
		region string
	}
	var ps []player
	for i, region := range []string{"eu", "us", "eu", "us"} {
		lr := td.login(t, fmt.Sprintf("r%d", i))
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue", "search_fields": map[string]any{"strings": map[string]string{"region": region}}})
		ps = append(ps, player{cl, lr.UUID, region})
	}
	region := map[string]string{}
	for _, p := range ps {
		region[p.uuid] = p.region
	}
	for _, p := range ps {
		var m matchOut
		if err := p.cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		for _, other := range m.Players {
			if region[other.UUID] != p.region {
				t.Fatalf("%s (%s) matched with %s (%s)", p.uuid, p.region, other.UUID, region[other.UUID])
			}
		}
	}
}
