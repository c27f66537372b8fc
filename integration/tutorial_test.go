package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
)

// TestTutorialGameInTheFleet checks docs/your-game.md's tutorial so it
// cannot go stale: it takes Reflex's Go files from the page, builds them
// as the reader would (a module of its own depending on arena, with the
// checkout's go.sum; nothing is fetched), runs the page's own test (go
// vet, go test), checks the binary refuses a start by hand, then runs it
// with `arena dispatcher --game reflex=PATH` and plays a room of it
// through the dispatcher to a rated result.
func TestTutorialGameInTheFleet(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(repo, "docs", "your-game.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	re := regexp.MustCompile("(?s)```go\n// file: ([^\n]+)\n(.*?)```")
	for _, m := range re.FindAllSubmatch(page, -1) {
		p := filepath.Join(dir, filepath.FromSlash(string(m[1])))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, m[2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gomod := "module example.com/reflex\n\ngo 1.26\n\nrequire github.com/arena-game/arena v0.0.0\n\nreplace github.com/arena-game/arena => " + repo + "\n"
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"reflex.go", "reflex_test.go", "cmd/reflex/main.go"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Fatalf("the tutorial has no %s", want)
		}
	}
	bin := filepath.Join(dir, "reflex-server")
	for _, args := range [][]string{{"vet", "./..."}, {"test", "-count=1", "./..."}, {"build", "-o", bin, "./cmd/reflex"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the tutorial's module: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Started by hand, the binary says who starts it and exits 1.
	manual := exec.Command(bin)
	manual.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := manual.CombinedOutput(); err == nil || !strings.Contains(string(out), "arena host") {
		t.Fatalf("manual start: %v %s", err, out)
	}

	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms", "--room-size", "2", "--game", "reflex="+bin)
	ctx := ctxT(t, 60*time.Second)
	var gs []*gamer
	for _, name := range []string{"ann", "bob"} {
		g := newGamer(t, ctx, a, "reflex-"+name)
		if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": "reflex"}); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	var rooms []*wsconn.Client
	for _, g := range gs {
		var m matchMsg
		if err := g.play.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		cl, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		if err := cl.RecvType(ctx, "points", nil); err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, cl)
	}
	// Ann hits after every "go": three points, the room ends.
	for range 3 {
		if err := rooms[0].RecvType(ctx, "go", nil); err != nil {
			t.Fatal(err)
		}
		if err := rooms[0].SendJSON(map[string]string{"type": "hit"}); err != nil {
			t.Fatal(err)
		}
		if err := rooms[0].RecvType(ctx, "scored", nil); err != nil {
			t.Fatal(err)
		}
	}
	var res struct {
		Reason, Winner string
		Players        []struct {
			UUID string
			Old  int `json:"old_score"`
			New  int `json:"new_score"`
		}
	}
	if err := rooms[1].RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	if res.Reason != "three_points" || res.Winner != gs[0].uuid || res.Players[0].New <= res.Players[0].Old {
		b, _ := json.Marshal(res)
		t.Fatalf("result %s", b)
	}
	if !strings.Contains(a.log.String(), "kind=reflex") {
		t.Fatal("the dispatcher's log never names the reflex process")
	}
}
