package sdk

import (
	"context"
	"sync"
)

// LoadReporter tells a dispatcher about load changes: one Add when a room
// is assigned here, one Del when it ends. A fleet process reports through
// the process contract instead (Deps.Events, AssignRoom answers, Status);
// a Server embedded in a program of its own may report over the line
// protocol with *lineproto.LoadReporter (add|PORT|TOKEN|ROOMID).
type LoadReporter interface {
	Add(ctx context.Context, roomID string) error
	Del(ctx context.Context, roomID string) error
}

// NopReporter reports nothing; a process started without a
// dispatcher address uses it.
type NopReporter struct{}

// Add implements LoadReporter.
func (NopReporter) Add(context.Context, string) error { return nil }

// Del implements LoadReporter.
func (NopReporter) Del(context.Context, string) error { return nil }

// MemReporter records reports in memory, for tests. Fail, when set, is
// returned by Add (and the call is not recorded).
type MemReporter struct {
	mu    sync.Mutex
	calls []string
	Fail  error
}

// Add implements LoadReporter.
func (m *MemReporter) Add(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.calls = append(m.calls, "add|"+id)
	return nil
}

// Del implements LoadReporter.
func (m *MemReporter) Del(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "del|"+id)
	return nil
}

// Calls returns the reports so far, as "add|ROOMID" and "del|ROOMID".
func (m *MemReporter) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}
