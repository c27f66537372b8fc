package fleetbench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs every scenario with the real binary at a small scale:
// a dispatcher killed with -9 and restarted, a real arena host spawning
// fight servers, seed and pipelined gets on two dispatchers.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the arena binary")
	}
	exe := filepath.Join(t.TempDir(), "arena")
	if out, err := exec.Command("go", "build", "-o", exe, "../../cmd/arena").CombinedOutput(); err != nil {
		t.Fatalf("build arena: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Exe: exe, Hosts: 2, PerHost: 3, SeedPerHost: 4, Rounds: 1, FleetLease: 500 * time.Millisecond,
		Spawns: 2, SeedDuration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Restart; r == nil || r.Rounds != 1 || !r.Exact || r.Processes != 6 || r.KillToComplete.P50 <= 0 {
		t.Errorf("restart %+v", r)
	}
	if s := res.Spawn; s == nil || s.Spawns != 2 || s.P50ms <= 0 || !strings.HasPrefix(s.Answer, s.Host+":") {
		t.Errorf("spawn %+v", s)
	}
	if s := res.Seed; s == nil || len(s.Modes) != 2 || s.Processes != 8 {
		t.Errorf("seed %+v", s)
	} else {
		for _, m := range s.Modes {
			if m.Fleet.RequestsPerS <= 0 || m.Single.RequestsPerS <= 0 {
				t.Errorf("seed mode %+v", m)
			}
		}
	}
}
