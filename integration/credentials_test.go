package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/waitfor"
)

// TestUpCredentialsLast: `arena up` reuses its credentials file across
// restarts (a signed-in player's token and the operator token keep
// working, the player's record is still there), a second `arena up` that
// cannot bind its ports leaves the running one's file alone (also with
// --rotate-credentials), and --rotate-credentials makes new ones.
func TestUpCredentialsLast(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials.json")
	common := []string{"up", "--credentials", creds, "--db", "sqlite:" + filepath.Join(dir, "arena.db"),
		"--outbox", filepath.Join(dir, "outbox"), "--chat-port", "0", "--min-map-processes", "0"}
	a := startArena(t, common[0], common[1:]...)
	uuid, tok := a.login(t, "stayer")
	me := func(a *Arena) (int, string) {
		var m struct{ UUID string }
		return api(t, a, "GET", "/v1/me", tok, nil, &m), m.UUID
	}
	if code, id := me(a); code != 200 || id != uuid {
		t.Fatalf("/v1/me: %d %s", code, id)
	}
	written, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(creds); info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials mode %v", info.Mode().Perm())
	}

	// A second arena up on the same ports fails to start and changes
	// nothing, even asked to rotate.
	for _, extra := range [][]string{nil, {"--rotate-credentials"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		// Another store prefix, so it gets past the fleet lease to its
		// ports (the same prefix is refused earlier, as another owner).
		args := append(append([]string(nil), a.Args...), "--store-prefix", a.Prefix+"second:")
		out, err := exec.CommandContext(ctx, arenaBin, append(args, extra...)...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "address already in use") {
			t.Fatalf("second arena up %v: %v\n%s", extra, err, out)
		}
		if now, _ := os.ReadFile(creds); !bytes.Equal(now, written) {
			t.Fatalf("a second arena up %v that could not start rewrote the credentials", extra)
		}
		if code, _ := me(a); code != 200 {
			t.Fatalf("the running arena refuses its player after a failed second start %v: %d", extra, code)
		}
	}

	// Restarted on the same files: the player is still signed in.
	a.Stop()
	b := startArena(t, common[0], common[1:]...)
	if code, id := me(b); code != 200 || id != uuid {
		t.Fatalf("after a restart /v1/me: %d %s", code, id)
	}
	if b.Operator != a.Operator || b.Secret != a.Secret {
		t.Fatal("the restarted arena has other tokens")
	}
	if code := api(t, b, "POST", "/v1/fleet/maxnum", b.Operator, map[string]int{"maxnum": 50}, nil); code != 200 {
		t.Fatalf("the operator token after a restart: %d", code)
	}
	if code := api(t, b, "GET", "/v1/players/"+uuid, "", nil, nil); code != 200 {
		t.Fatalf("the player's record after a restart: %d", code)
	}

	// Rotated: the old token is refused, the file has new values.
	b.Stop()
	c := startArena(t, common[0], append(common[1:], "--rotate-credentials")...)
	// The harness may have read the old file before the new one was
	// written (once arena listens): wait for the new one.
	waitfor.Cond(t, "the rotated credentials are written", func() bool {
		now, _ := os.ReadFile(creds)
		var m map[string]string
		if json.Unmarshal(now, &m) != nil || bytes.Equal(now, written) {
			return false
		}
		c.Secret, c.Operator = m["secret"], m["operator_token"]
		return true
	})
	if code, _ := me(c); code != 401 {
		t.Fatalf("an old token after --rotate-credentials: %d", code)
	}
	if c.Secret == a.Secret || c.Operator == a.Operator {
		t.Fatal("--rotate-credentials kept the old secrets")
	}
}

// TestSecretsFromFiles: the secret and the database DSN given as files
// work and never show in the process list.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	const secret = "file-secret-0123456789"
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dsn := "sqlite:" + filepath.Join(dir, "arena.db")
	a := startArena(t, "dispatcher", "--guest-login", "--secret-file", write("secret", secret), "--db-file", write("db", dsn))
	// A token signed with the file's secret is accepted.
	signer, err := auth.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := signer.Mint(auth.KindPlayer, auth.Claims{Subject: "filesecret", Name: "f"}, time.Hour)
	if code := api(t, a, "GET", "/v1/me", tok, nil, nil); code != 200 {
		t.Fatalf("a token of the file's secret: %d", code)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(a.cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cmdline), secret) || strings.Contains(string(cmdline), "arena.db") {
		t.Fatalf("the process list shows a secret: %q", cmdline)
	}
	// Both a value and its file is refused.
	out, err := exec.Command(arenaBin, "dispatcher", "--secret", "x", "--secret-file", filepath.Join(dir, "secret"),
		"--db", dsn, "--memcache", a.Memcache, "--fleet-token", "t").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--secret and --secret-file") {
		t.Fatalf("both --secret and --secret-file: %v %s", err, out)
	}
}
