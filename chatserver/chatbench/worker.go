package chatbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"time"

	"github.com/arena-game/arena/internal/auth"
)

// The bench splits its clients over worker processes (`arena bench chat
// --worker`), each holding at most PerWorker sockets, because one process
// may not hold more descriptors than RLIMIT_NOFILE allows. The parent and a
// worker speak JSON lines over the worker's stdin and stdout:
//
//	parent: {"setup": {...}}       worker: {"ready": true, "connect_s": S} or {"error": "..."}
//	parent: {"arm": "MARKER"}      worker: {"armed": true}
//	(the parent posts MARKER)      worker: {"arrivals": [unix ns, ...]} once all its clients have it, or after 10 s
//	parent: stdin closed           worker: closes its clients and exits

// PerWorker is the most clients one worker process holds.
const PerWorker = 10000

// workerSetup is what a worker is told to do. The secret travels on stdin,
// never argv.
type workerSetup struct {
	Addr        string   `json:"addr"`
	Secret      string   `json:"secret,omitempty"` // empty: no tokens (baseline)
	From        int      `json:"from"`
	Count       int      `json:"count"`
	Sources     []string `json:"sources"`
	Concurrency int      `json:"concurrency"`
}

type workerIn struct {
	Setup *workerSetup `json:"setup,omitempty"`
	Arm   string       `json:"arm,omitempty"`
}

type workerOut struct {
	Ready    bool    `json:"ready,omitempty"`
	ConnectS float64 `json:"connect_s,omitempty"`
	Armed    bool    `json:"armed,omitempty"`
	Arrivals []int64 `json:"arrivals,omitempty"`
	Received *int    `json:"received,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// RunWorker is the worker side: it reads commands from in and answers on
// out until in is closed or ctx is done.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	var f *fleetOfClients
	defer func() {
		if f != nil {
			f.close()
		}
	}()
	msgs := make(chan workerIn)
	readErr := make(chan error, 1)
	go func() {
		for {
			var msg workerIn
			if err := dec.Decode(&msg); err != nil {
				readErr <- err
				return
			}
			msgs <- msg
		}
	}()
	for {
		var msg workerIn
		select {
		case msg = <-msgs:
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench worker: read: %w", err)
		case <-ctx.Done():
			return nil
		}
		switch {
		case msg.Setup != nil:
			s := *msg.Setup
			var srcs []net.IP
			for _, a := range s.Sources {
				if ip := net.ParseIP(a); ip != nil {
					srcs = append(srcs, ip)
				}
			}
			urlFor := func(int) string { return "ws://" + s.Addr + "/ws" }
			if s.Secret != "" {
				signer, err := auth.NewSigner(s.Secret)
				if err != nil {
					return enc.Encode(workerOut{Error: err.Error()})
				}
				urlFor = func(i int) string {
					name := "bench-" + strconv.Itoa(s.From+i)
					tok, _ := signer.Mint(auth.KindPlayer, auth.Claims{Subject: name, Name: name, Bot: true}, 2*time.Hour)
					return "ws://" + s.Addr + "/ws?token=" + tok
				}
			}
			f = newFleet(s.Count)
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			err := f.connect(cctx, s.Addr, urlFor, srcs, s.Concurrency)
			cancel()
			if err != nil {
				return enc.Encode(workerOut{Error: err.Error()})
			}
			if err := enc.Encode(workerOut{Ready: true, ConnectS: time.Since(start).Seconds()}); err != nil {
				return err
			}
		case msg.Arm != "":
			if f == nil {
				return enc.Encode(workerOut{Error: "arm before setup"})
			}
			f.reset([]byte(msg.Arm))
			if err := enc.Encode(workerOut{Armed: true}); err != nil {
				return err
			}
			select {
			case <-*f.allIn.Load():
			case <-time.After(10 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			arr := f.collect()
			n := len(arr)
			if err := enc.Encode(workerOut{Arrivals: arr, Received: &n}); err != nil {
				return err
			}
		}
	}
}

// worker is the parent's handle on one worker process.
type worker struct {
	cmd    *exec.Cmd
	enc    *json.Encoder
	dec    *json.Decoder
	stdin  io.Closer
	exited chan struct{}
}

func startWorker(cfg Config) (*worker, error) {
	cmd := exec.Command(cfg.Exe, "bench", "chat", "--worker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cfg.ServerLog
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bench worker: %w", err)
	}
	w := &worker{cmd: cmd, enc: json.NewEncoder(stdin), dec: json.NewDecoder(bufio.NewReader(stdout)), stdin: stdin, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.exited) }()
	return w, nil
}

func (w *worker) send(v workerIn) error { return w.enc.Encode(v) }

// recv reads the worker's next answer; an {"error"} answer is an error.
func (w *worker) recv() (workerOut, error) {
	var out workerOut
	if err := w.dec.Decode(&out); err != nil {
		return out, fmt.Errorf("bench worker: %w", err)
	}
	if out.Error != "" {
		return out, fmt.Errorf("bench worker: %s", out.Error)
	}
	return out, nil
}

// stop closes the worker's stdin (it closes its clients and exits) and
// kills it if it has not exited within 10 s.
func (w *worker) stop() {
	_ = w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}
