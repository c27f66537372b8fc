package results

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegment: whatever a segment holds (a torn or corrupt file, lines
// of other versions), claiming it and counting it never panic, and a claim
// never finds more entries waiting than Pending counts.
func FuzzSegment(f *testing.F) {
	f.Add([]byte("{\"v\":1,\"result\":{\"Room\":\"r1\"}}\n{\"done\":\"r1\"}\n"))
	f.Add([]byte("{\"v\":1,\"result\":{\"Room\":\"r1\"}}\n{\"v\":1,\"result\":{\"Room\":\"r1\"}}\n{\"done\":\"r1\"}\n{\"v\":1,\"res"))
	f.Add([]byte("{garbage\n\n{\"done\":\"\"}\n{\"v\":2,\"result\":{}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		o, err := openOutbox(dir)
		if err != nil {
			t.Fatal(err)
		}
		name := segPrefix + "fuzz" + segSuffix
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := Pending(dir)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := o.claim(name)
		if err != nil || c == nil {
			t.Fatalf("claim: %v, %v", c, err)
		}
		defer c.release(false)
		if len(c.entries) > n { // a claim skips a torn last line; Pending does not
			t.Fatalf("claim found %d entries, Pending %d", len(c.entries), n)
		}
	})
}
