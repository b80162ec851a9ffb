package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Child is a program a [Supervisor] keeps running.
type Child struct {
	// Name prefixes the child's output lines and its log records.
	Name string
	// Path and Args are the program and its arguments (without Path).
	Path string
	Args []string
	// Env is added to the supervisor's own environment.
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// Before runs before every start, e.g. to remove a stale socket. An
	// error counts as a failed start.
	Before func() error
	// StopSignal asks the child to stop; zero means SIGTERM.
	StopSignal syscall.Signal
}

// Supervisor runs children like a process supervisor: a child that exits is
// started again after a backoff that doubles from MinBackoff to MaxBackoff
// and goes back to MinBackoff once a run lasted ResetAfter. Every line a
// child prints goes to Stdout or Stderr prefixed with "[name] ". Stopping a
// child sends its stop signal to its process group, waits up to
// DrainTimeout, then kills the group.
//
// Set the fields before the first [Supervisor.Start]; a Supervisor is then
// safe for concurrent use.
type Supervisor struct {
	Stdout, Stderr io.Writer // nil discards
	Logger         *slog.Logger
	MinBackoff     time.Duration // default 1s
	MaxBackoff     time.Duration // default 30s
	ResetAfter     time.Duration // default 1m
	DrainTimeout   time.Duration // default 10s

	outMu sync.Mutex // serialises writes to Stdout and Stderr
}

// Process is one supervised child.
type Process struct {
	child Child
	sup   *Supervisor

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu     sync.Mutex
	pid    int
	starts int
}

// Start supervises c until ctx is cancelled or [Process.Stop] is called; it
// returns at once.
func (s *Supervisor) Start(ctx context.Context, c Child) *Process {
	p := &Process{child: c, sup: s, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(ctx)
	return p
}

// Name is the child's name.
func (p *Process) Name() string { return p.child.Name }

// Pid is the child's current process id, 0 while it is not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Starts counts the times the child was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Done is closed when the child has stopped for good.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop stops the child (signal, drain timeout, kill) and ends its
// supervision; it returns once the child is gone.
func (p *Process) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

// StopAll stops procs concurrently and returns when all are gone.
func StopAll(procs ...*Process) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.Stop)
	}
	wg.Wait()
}

func (s *Supervisor) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (p *Process) run(ctx context.Context) {
	defer close(p.done)
	s := p.sup
	minB, maxB := orDefault(s.MinBackoff, time.Second), orDefault(s.MaxBackoff, 30*time.Second)
	resetAfter := orDefault(s.ResetAfter, time.Minute)
	log := s.logger().With("child", p.child.Name)
	backoff := minB
	for {
		began := time.Now()
		stopped, err := p.runOnce(ctx)
		if stopped {
			return
		}
		if time.Since(began) >= resetAfter {
			backoff = minB
		}
		log.Warn("child exited; restarting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxB)
	}
}

// runOnce starts the child and waits for it to exit or to be stopped.
// stopped reports that supervision should end.
func (p *Process) runOnce(ctx context.Context) (stopped bool, err error) {
	s := p.sup
	select {
	case <-ctx.Done():
		return true, nil
	case <-p.stop:
		return true, nil
	default:
	}
	if p.child.Before != nil {
		if err := p.child.Before(); err != nil {
			return false, fmt.Errorf("prepare: %w", err)
		}
	}
	stdout := s.lineWriter(p.child.Name, s.Stdout)
	stderr := s.lineWriter(p.child.Name, s.Stderr)
	defer stdout.flush()
	defer stderr.flush()

	cmd := exec.Command(p.child.Path, p.child.Args...)
	cmd.Dir = p.child.Dir
	if len(p.child.Env) > 0 {
		cmd.Env = append(os.Environ(), p.child.Env...)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group: a terminal's Ctrl-C reaches only the
	// supervisor, which stops children in order; and a stop reaches the
	// child's own children too. Pdeathsig ends it if the supervisor dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return false, err
	}
	p.mu.Lock()
	p.pid = cmd.Process.Pid
	p.starts++
	p.mu.Unlock()
	s.logger().Debug("child started", "child", p.child.Name, "pid", cmd.Process.Pid)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		p.mu.Lock()
		p.pid = 0
		p.mu.Unlock()
	}()

	select {
	case err := <-exited:
		if err == nil {
			err = errors.New("exited with status 0")
		}
		return false, err
	case <-ctx.Done():
	case <-p.stop:
	}
	sig := p.child.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case err = <-exited:
	case <-time.After(orDefault(s.DrainTimeout, 10*time.Second)):
		s.logger().Warn("child did not stop in time; killing", "child", p.child.Name)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		err = <-exited
	}
	// Anything left in the group (a grandchild that ignored the signal).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.logger().Info("child stopped", "child", p.child.Name, "status", exitStatus(err))
	return true, err
}

// exitStatus describes how a child ended.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// maxLine bounds a buffered partial line; a longer one is written in parts.
const maxLine = 64 << 10

// prefixWriter writes each complete line it receives to out, prefixed.
type prefixWriter struct {
	s      *Supervisor
	out    io.Writer
	prefix []byte
	buf    []byte
}

func (s *Supervisor) lineWriter(name string, out io.Writer) *prefixWriter {
	if out == nil {
		out = io.Discard
	}
	return &prefixWriter{s: s, out: out, prefix: []byte("[" + name + "] ")}
}

// Write implements io.Writer. It is called by one goroutine (exec's copier).
func (w *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.emit(append(w.buf, '\n'))
				w.buf = w.buf[:0]
			}
			return n, nil
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
}

func (w *prefixWriter) emit(line []byte) {
	out := make([]byte, 0, len(w.prefix)+len(line))
	out = append(append(out, w.prefix...), line...)
	w.s.outMu.Lock()
	defer w.s.outMu.Unlock()
	_, _ = w.out.Write(out)
}

// flush writes a last line that had no newline.
func (w *prefixWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}
