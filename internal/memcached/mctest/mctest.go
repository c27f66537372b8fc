// Package mctest starts real memcached servers (the memcached binary) for
// tests that compare against one or that stop one on purpose.
//
// When the binary is missing, Binary skips the test with a message, except
// under CI (CI=true), where it fails it: CI installs memcached, so a
// missing binary there is a broken setup, not a reason to skip.
package mctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

// Binary returns the memcached binary's path, or skips t (fails it when
// CI=true) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("memcached binary not found and CI=true: .ci/run must install it (apt-get install memcached)")
		}
		t.Skip("memcached binary not found: install memcached (apt-get install memcached) to run this test")
	}
	return path
}

// Available reports whether the memcached binary is on PATH.
func Available() bool {
	_, err := exec.LookPath("memcached")
	return err == nil
}

// Server is a real memcached on 127.0.0.1, stopped when the test ends.
type Server struct {
	t    testing.TB
	bin  string
	args []string
	Addr string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs memcached on a free port of 127.0.0.1 with extra arguments
// (for example "-m", "64") and waits until it accepts connections.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), args: extra}
	var err error
	for range 5 { // a free port can be taken between the probe and memcached's bind
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("mctest: start memcached: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	up := waitfor.Poll(10*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case err := <-exited:
		return fmt.Errorf("memcached on %s exited at start: %v", s.Addr, err)
	default:
	}
	if !up {
		cmd.Process.Kill()
		<-exited
		return errors.New("memcached on " + s.Addr + " did not accept connections")
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	go func() { <-exited }()
	return nil
}

// Stop kills the server (as a crash would) and waits until its port
// refuses connections. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	waitfor.Cond(s.t, "memcached on "+s.Addr+" to stop", func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

// Restart starts the server again on the same address after Stop (empty,
// as a restarted memcached is).
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 50 { // the kernel may hold the port for a moment
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("mctest: restart memcached on %s: %v", s.Addr, err)
}
