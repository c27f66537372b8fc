package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arena-game/arena/playerdb"
)

// TestDBCopyCommand: arena db copy carries a database's records into a
// new file and says how many; a missing source file is refused rather
// than created empty; a target that holds records is refused.
func TestDBCopyCommand(t *testing.T) {
	dir := t.TempDir()
	src := "sqlite:" + filepath.Join(dir, "src.db")
	db, err := playerdb.Open(context.Background(), playerdb.Config{DSN: src})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := db.EnsurePlayer(context.Background(), playerdb.NewPlayer{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run(append([]string{"arena", "db", "copy"}, args...))
		return out.String(), err
	}
	dst := filepath.Join(dir, "dst.db")
	out, err := run("--from", src, "--to", dst)
	if err != nil || !strings.Contains(out, "players        2 rows") {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	if _, err := run("--from", src, "--to", dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a full database: %v", err)
	}
	missing := filepath.Join(dir, "typo.db")
	if _, err := run("--from", missing, "--to", filepath.Join(dir, "other.db")); err == nil {
		t.Fatal("a missing source was accepted")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the missing source was created: %v", err)
	}
}
