package tutorial

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// files returns the tutorial's Go files: every ```go block of the page
// whose first line is "// file: NAME".
func files(t *testing.T, page []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	re := regexp.MustCompile("(?s)```go\n// file: ([^\n]+)\n(.*?)```")
	for _, m := range re.FindAllSubmatch(page, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

func TestTutorialBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module of its own")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(repo, "docs", "your-game.md"))
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, page)
	for _, want := range []string{"reflex.go", "reflex_test.go", "cmd/reflex/main.go"} {
		if fs[want] == "" {
			t.Fatalf("the tutorial has no %s (found %v)", want, keys(fs))
		}
	}
	dir := t.TempDir()
	for name, src := range fs {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A module of the reader's own that depends on arena (this checkout),
	// with the checkout's go.sum: everything it needs is already in the
	// module cache, nothing is fetched.
	gomod := "module example.com/reflex\n\ngo 1.26\n\nrequire github.com/arena-game/arena v0.0.0\n\nreplace github.com/arena-game/arena => " + repo + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("vet", "./...")
	run("test", "-count=1", "./...")
	run("build", "-o", "reflex-server", "./cmd/reflex")
	// Started by hand, the binary says who starts it and exits 1.
	cmd := exec.Command(filepath.Join(dir, "reflex-server"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "arena host") {
		t.Fatalf("manual start: %v %s", err, stderr.String())
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
