package matchmaking

import (
	"errors"
	"testing"
)

// ParseProfiles never panics and either returns valid profiles or an
// error wrapping ErrBadProfiles.
func FuzzParseProfiles(f *testing.F) {
	f.Add([]byte(yamlProfiles))
	f.Add([]byte(BenchProfiles))
	f.Add([]byte(`{"profiles":[{"name":"a","rosters":[{"name":"x","size":2}],"min_players":2,"max_players":5}]}`))
	f.Add([]byte("profiles: [{name: a, pools: [{name: p, double_range: [{field: x, min: .nan}]}]}]"))
	f.Add([]byte("profiles: [{name: a, ticket_ttl: -1s}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseProfiles(data, []string{"mine"})
		if err != nil {
			if !errors.Is(err, ErrBadProfiles) {
				t.Fatalf("error not ErrBadProfiles: %v", err)
			}
			return
		}
		if err := ps.Validate([]string{"mine"}); err != nil {
			t.Fatalf("parsed profiles do not validate again: %v", err)
		}
	})
}
