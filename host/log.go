package host

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// HCLogToSlog adapts an slog.Logger to hclog.Logger, so go-plugin's client
// forwards a child's log lines into the host's slog output, tagged
// with name as the "proc" attribute.
func HCLogToSlog(l *slog.Logger, name string) hclog.Logger {
	return &slogAdapter{l: l, name: name}
}

type slogAdapter struct {
	l     *slog.Logger
	name  string
	args  []any
	level hclog.Level
}

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	lv := toSlog(level)
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	all := append(append([]any{}, a.args...), args...)
	if a.name != "" {
		all = append(all, "proc", a.name)
	}
	a.l.Log(context.Background(), lv, msg, all...)
}
func (a *slogAdapter) Trace(msg string, args ...interface{}) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...interface{}) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...interface{})  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...interface{})  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...interface{}) { a.Log(hclog.Error, msg, args...) }
func (a *slogAdapter) IsTrace() bool                         { return false }
func (a *slogAdapter) IsDebug() bool                         { return a.l.Enabled(context.Background(), slog.LevelDebug) }
func (a *slogAdapter) IsInfo() bool                          { return a.l.Enabled(context.Background(), slog.LevelInfo) }
func (a *slogAdapter) IsWarn() bool                          { return true }
func (a *slogAdapter) IsError() bool                         { return true }
func (a *slogAdapter) ImpliedArgs() []interface{}            { return a.args }
func (a *slogAdapter) With(args ...interface{}) hclog.Logger {
	c := *a
	c.args = append(append([]any{}, a.args...), args...)
	return &c
}
func (a *slogAdapter) Name() string { return a.name }

// Named keeps the adapter's own tag: go-plugin appends the binary's name,
// which says nothing here.
func (a *slogAdapter) Named(string) hclog.Logger { return a }
func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}
func (a *slogAdapter) SetLevel(l hclog.Level) { a.level = l }
func (a *slogAdapter) GetLevel() hclog.Level {
	if a.IsDebug() {
		return hclog.Debug
	}
	return hclog.Info
}
func (a *slogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelInfo)
}
func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(nil).Writer()
}
