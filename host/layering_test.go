package host_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHostDoesNotImportFleet: the host agent shares the host-control
// contract with the dispatcher through package hostctl and never depends
// on the dispatcher's fleet (fleet's test helpers import host, so an
// import the other way would tie the two together).
func TestHostDoesNotImportFleet(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list named no dependencies")
	}
	for _, d := range deps {
		if d == "github.com/arena-game/arena/fleet" || strings.HasPrefix(d, "github.com/arena-game/arena/fleet/") ||
			d == "github.com/arena-game/arena/dispatcher" {
			t.Errorf("package host depends on %s", d)
		}
	}
}
