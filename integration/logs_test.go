package integration

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// textLine is one line of slog's text format, which every arena process
// writes (the fleet's own lines are forwarded in it too).
var textLine = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR)(\+\d+)? msg=`)

// TestLogsOneFormatToTheEnd runs `arena up` with its embedded memcached,
// stops it with SIGTERM and reads the whole log: every line is in the one
// text format (the memcached embedded before wrote its last line as JSON),
// and the stop signal is logged.
func TestLogsOneFormatToTheEnd(t *testing.T) {
	a := startArena(t, "up", "--memcache", "", "--chat-port", strconv.Itoa(freePort(t)), "--credentials", t.TempDir()+"/creds.json")
	waitReady(t, a, "fight", "map", "chat")
	a.Stop()
	log := a.log.String()
	if !strings.Contains(log, `msg="embedded memcached started"`) {
		t.Fatalf("not the embedded memcached:\n%s", log)
	}
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i, l := range lines {
		if !textLine.MatchString(l) {
			t.Errorf("line %d of %d is not in the text format: %q", i+1, len(lines), l)
		}
	}
	if !strings.Contains(log, `msg="stop signal received; stopping" signal=terminated`) {
		t.Errorf("no line for the stop signal")
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}
