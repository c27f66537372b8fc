// Package benchdisp starts `arena dispatcher` processes for the load
// generators (`arena bench dispatch`, `e2e`, `fleet`): free ports, an
// embedded memcached unless one is given, a scratch database and store
// prefix, and generated tokens; it can kill one with -9 and start it again
// with the same flags, as a crashed dispatcher is restarted.
package benchdisp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
)

// Options configures a dispatcher.
type Options struct {
	// Exe is the arena binary (default: this executable).
	Exe string
	// Memcache is the memcached list (default: an embedded one).
	Memcache string
	// LocalHost runs the dispatcher's own host (fight, map and chat
	// processes); without it only the hosts that dial --host-listen run
	// processes.
	LocalHost bool
	// Extra flags, after the defaults (a later flag wins).
	Extra []string
}

// Dispatcher is a running `arena dispatcher`.
type Dispatcher struct {
	// Line is the line protocol address, HTTP the API's base URL,
	// HostListen the host-control address.
	Line, HTTP, HostListen string
	// Operator and Fleet are its operator and fleet tokens; Memcache and
	// Prefix its store.
	Operator, Fleet  string
	Memcache, Prefix string

	exe     string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	cleanup func()
}

// FreePort returns a port nothing listens on now on 127.0.0.1, taken
// below the kernel's ephemeral range (32768 and up on Linux) when it can:
// a dispatcher restarted after kill -9 binds its ports again, and a port
// from the ephemeral range may meanwhile be the local end of another
// process's outgoing connection (bind: address already in use).
func FreePort() int {
	for range 100 {
		p := 20000 + rand.IntN(12000)
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			ln.Close()
			return p
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs a dispatcher; it returns once the process runs (see Up).
func Start(opt Options) (*Dispatcher, error) {
	exe := opt.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	d := &Dispatcher{exe: exe, Memcache: opt.Memcache, cleanup: func() {}}
	if d.Memcache == "" {
		mc, err := store.StartEmbedded(0)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		d.Memcache, d.cleanup = mc.Addr(), mc.Close
	}
	dir, err := os.MkdirTemp("", "arena-bench-")
	if err != nil {
		d.cleanup()
		return nil, fmt.Errorf("bench: %w", err)
	}
	closeStore := d.cleanup
	d.cleanup = func() { closeStore(); os.RemoveAll(dir) }
	d.Line = "127.0.0.1:" + strconv.Itoa(FreePort())
	d.HTTP = "http://127.0.0.1:" + strconv.Itoa(FreePort())
	d.HostListen = "127.0.0.1:" + strconv.Itoa(FreePort())
	d.Operator, d.Fleet, d.Prefix = auth.RandomID(16), auth.RandomID(16), "bench"+auth.RandomID(4)+":"
	d.args = []string{"dispatcher", "--db", "sqlite:" + filepath.Join(dir, "arena.db"), "--outbox", filepath.Join(dir, "outbox"),
		"--listen", d.Line, "--http", strings.TrimPrefix(d.HTTP, "http://"), "--grpc", "", "--host-listen", d.HostListen,
		"--memcache", d.Memcache, "--store-prefix", d.Prefix, "--fleet-token", d.Fleet, "--secret", auth.RandomID(16),
		"--operator-token", d.Operator, "--max-conns", "20000", "--log-level", "warn"}
	if opt.LocalHost {
		d.args = append(d.args, "--local-host", "--fight-port-base", strconv.Itoa(30000+FreePort()%20000),
			"--map-port-base", strconv.Itoa(25000+FreePort()%5000))
	}
	d.args = append(d.args, opt.Extra...)
	if err := d.start(); err != nil {
		d.cleanup()
		return nil, err
	}
	return d, nil
}

func (d *Dispatcher) start() error {
	d.cmd = exec.Command(d.exe, d.args...)
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("bench: start the dispatcher: %w", err)
	}
	d.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(d.cmd, d.exited)
	return nil
}

// Up waits until the dispatcher answers on the line protocol: a port on
// `get` when get is set, else any answer to `stat`.
func (d *Dispatcher) Up(ctx context.Context, get bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := "stat"
	if get {
		req = "get"
	}
	for {
		ans, err := Ask(d.Line, req)
		if err == nil {
			if _, perr := strconv.Atoi(ans); !get || perr == nil {
				return nil
			}
		}
		select {
		case <-d.exited:
			return errors.New("bench: the dispatcher exited")
		case <-ctx.Done():
			return fmt.Errorf("bench: the dispatcher did not come up (last answer %q, %v)", ans, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ask sends one line-protocol request on a connection of its own and
// returns the answer.
func Ask(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req + "\n")); err != nil {
		return "", err
	}
	var b []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if n > 0 && b[len(b)-1] == '\n' {
			return strings.TrimSuffix(string(b), "\n"), nil
		}
		if err != nil {
			if len(b) > 0 {
				return string(b), nil
			}
			return "", err
		}
	}
}

// Kill kills the dispatcher with -9 and waits for it to be gone.
func (d *Dispatcher) Kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// Restart starts the dispatcher again with the same flags (after Kill).
func (d *Dispatcher) Restart() error { return d.start() }

// Stop stops the dispatcher with SIGTERM and removes its scratch files
// (and memcached, when it started one).
func (d *Dispatcher) Stop() {
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(20 * time.Second):
			d.Kill()
		}
	}
	d.cleanup()
}
