package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/arena-game/arena/internal/waitfor"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestStopOnSignalLogs cancels the run on the first signal and logs it, and
// each later one, through the process's logger in its text format.
func TestStopOnSignalLogs(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	go func() { stopOnSignal(sigs, cancel, func() *slog.Logger { return log }); done <- struct{}{} }()
	sigs <- syscall.SIGTERM
	waitfor.Cond(t, "the run to be cancelled", func() bool { return ctx.Err() != nil })
	sigs <- syscall.SIGINT
	close(sigs)
	waitfor.Recv(t, done, "stopOnSignal to return")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `level=INFO msg="stop signal received; stopping" signal=terminated`) ||
		!strings.Contains(lines[1], `msg="stop signal received again; already stopping" signal=interrupt`) {
		t.Fatalf("log:\n%s", buf.String())
	}
}
