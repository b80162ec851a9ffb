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
	// StopTimeout is how long the child may take to stop after its stop
	// signal before it is killed; zero means the supervisor's
	// DrainTimeout. A UA needs its drain window and a margin.
	StopTimeout time.Duration
}

// Supervisor runs children like a process supervisor: a child that exits is
// started again after a backoff that doubles from MinBackoff to MaxBackoff
// and goes back to MinBackoff once a run lasted ResetAfter. Every line a
// child prints goes to Stdout or Stderr prefixed with "[name] ". Stopping a
// child sends its stop signal to its process group, waits up to its
// StopTimeout (default DrainTimeout), then kills the group. Every start and
// exit is logged at info (warn for an exit nobody asked for).
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
	restart  chan chan struct{} // a restart asked for, and its reply

	mu     sync.Mutex
	pid    int
	starts int
}

// Start supervises c until ctx is cancelled or [Process.Stop] is called; it
// returns at once.
func (s *Supervisor) Start(ctx context.Context, c Child) *Process {
	p := &Process{child: c, sup: s, stop: make(chan struct{}), done: make(chan struct{}), restart: make(chan chan struct{})}
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

// Signal sends sig to the running child (not to its group). It fails when
// no child is running.
func (p *Process) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 {
		return fmt.Errorf("devstack: %s is not running", p.child.Name)
	}
	return syscall.Kill(pid, sig)
}

// Kill kills the running child and its process group with SIGKILL, as a
// crash would: the supervisor starts it again after its backoff. It fails
// when no child is running.
func (p *Process) Kill() error {
	pid := p.Pid()
	if pid == 0 {
		return fmt.Errorf("devstack: %s is not running", p.child.Name)
	}
	return syscall.Kill(-pid, syscall.SIGKILL)
}

// Restart stops the running child the way [Process.Stop] does (stop
// signal, StopTimeout, kill) and starts it again at once, without backoff;
// supervision goes on. It returns once the old child has exited and the
// new one has been started (not necessarily answering yet), or when
// supervision has ended.
func (p *Process) Restart() {
	reply := make(chan struct{})
	select {
	case p.restart <- reply:
		select {
		case <-reply:
		case <-p.done:
		}
	case <-p.done:
	}
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
	var restarted chan struct{} // to close once the next child has started
	for {
		began := time.Now()
		stopped, again, err := p.runOnce(ctx, restarted)
		restarted = nil
		if stopped {
			return
		}
		if again != nil {
			restarted = again
			continue
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

// runOnce starts the child and waits for it to exit, to be stopped or to
// be restarted; started, when not nil, is closed once the child started
// (or failed to). stopped reports that supervision should end; restart,
// when not nil, that the child was stopped to be started again at once
// (close it once it has).
func (p *Process) runOnce(ctx context.Context, started chan struct{}) (stopped bool, restart chan struct{}, err error) {
	s := p.sup
	if started != nil {
		defer func() {
			// Closed once this start is over, if it did not already.
			select {
			case <-started:
			default:
				close(started)
			}
		}()
	}
	select {
	case <-ctx.Done():
		return true, nil, nil
	case <-p.stop:
		return true, nil, nil
	default:
	}
	if p.child.Before != nil {
		if err := p.child.Before(); err != nil {
			return false, nil, fmt.Errorf("prepare: %w", err)
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
		return false, nil, err
	}
	p.mu.Lock()
	p.pid = cmd.Process.Pid
	p.starts++
	p.mu.Unlock()
	s.logger().Info("child started", "child", p.child.Name, "pid", cmd.Process.Pid)
	if started != nil {
		close(started)
	}

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		p.mu.Lock()
		p.pid = 0
		p.mu.Unlock()
	}()

	var again chan struct{}
	select {
	case err := <-exited:
		if err == nil {
			err = errors.New("exited with status 0")
		}
		return false, nil, err
	case <-ctx.Done():
	case <-p.stop:
	case again = <-p.restart:
	}
	sig := p.child.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	timeout := p.child.StopTimeout
	if timeout <= 0 {
		timeout = orDefault(s.DrainTimeout, 10*time.Second)
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case err = <-exited:
	case <-time.After(timeout):
		s.logger().Warn("child did not stop in time; killing", "child", p.child.Name, "after", timeout)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		err = <-exited
	}
	// Anything left in the group (a grandchild that ignored the signal).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if again != nil {
		s.logger().Info("child stopped to restart", "child", p.child.Name, "status", exitStatus(err))
		return false, again, err
	}
	s.logger().Info("child stopped", "child", p.child.Name, "status", exitStatus(err))
	return true, nil, err
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
