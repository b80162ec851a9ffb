package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerProcess is a started worker process: the coordinator writes its
// plan and window to Stdin and reads its reports from Stdout.
type WorkerProcess struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	// Wait waits for the process to exit; Kill ends it at once.
	Wait func() error
	Kill func() error
}

// ExecWorker returns a [Config.StartWorker] that runs the command name
// with args (for instance the kaiwa binary with "bench", "worker"), its
// standard error going to stderr.
func ExecWorker(stderr io.Writer, name string, args ...string) func(context.Context) (*WorkerProcess, error) {
	return func(ctx context.Context) (*WorkerProcess, error) {
		cmd := exec.Command(name, args...)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("worker stdin: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, fmt.Errorf("worker stdout: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		return &WorkerProcess{
			Stdin: in, Stdout: out, Wait: cmd.Wait,
			Kill: func() error { return cmd.Process.Kill() },
		}, nil
	}
}

// remoteHandle drives a worker process.
type remoteHandle struct {
	wp   *WorkerProcess
	msgs chan workerMsg
	prog atomic.Pointer[Progress]
	wmu  sync.Mutex
	err  atomic.Value // error: why the reports ended
}

func startRemote(ctx context.Context, start func(context.Context) (*WorkerProcess, error), p Plan) (*remoteHandle, error) {
	wp, err := start(ctx)
	if err != nil {
		return nil, err
	}
	h := &remoteHandle{wp: wp, msgs: make(chan workerMsg, 4)}
	h.prog.Store(&Progress{Phase: "start"})
	if err := h.send(p); err != nil {
		_ = wp.Kill()
		_ = wp.Wait()
		return nil, err
	}
	go h.read()
	return h, nil
}

// send writes one JSON line to the worker.
func (h *remoteHandle) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if _, err := h.wp.Stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write to worker: %w", err)
	}
	return nil
}

// read is the handle's one reader of the worker's reports.
func (h *remoteHandle) read() {
	defer close(h.msgs)
	br := bufio.NewReaderSize(h.wp.Stdout, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var m workerMsg
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				h.err.Store(fmt.Errorf("worker report: %w", jerr))
				return
			}
			if m.Kind == "progress" && m.Progress != nil {
				h.prog.Store(m.Progress)
				continue
			}
			h.msgs <- m
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				h.err.Store(fmt.Errorf("read worker: %w", err))
			}
			return
		}
	}
}

// next returns the worker's next report of the given kind.
func (h *remoteHandle) next(ctx context.Context, kind string) (workerMsg, error) {
	for {
		select {
		case m, ok := <-h.msgs:
			if !ok {
				if err, _ := h.err.Load().(error); err != nil {
					return m, err
				}
				return m, errors.New("worker ended without reporting")
			}
			if m.Kind == "error" {
				return m, fmt.Errorf("worker: %s", m.Error)
			}
			if m.Kind == kind {
				return m, nil
			}
		case <-ctx.Done():
			return workerMsg{}, ctx.Err()
		}
	}
}

func (h *remoteHandle) connected(ctx context.Context) (ConnectStats, error) {
	m, err := h.next(ctx, "connected")
	if err != nil || m.Connected == nil {
		return ConnectStats{}, errors.Join(err, errors.New("no connect report"))
	}
	return *m.Connected, nil
}

func (h *remoteHandle) start(win Window) error { return h.send(control{Window: &win}) }

func (h *remoteHandle) published(ctx context.Context) ([]uint64, error) {
	m, err := h.next(ctx, "published")
	return m.Acked, err
}

func (h *remoteHandle) finish(acked []uint64) error {
	return h.send(control{Finish: true, Acked: acked})
}

// control is a line the coordinator writes to a worker after its plan:
// the window, then the finish with every publisher's acknowledged count.
type control struct {
	Window *Window  `json:"window,omitempty"`
	Finish bool     `json:"finish,omitempty"`
	Acked  []uint64 `json:"acked,omitempty"`
}

func (h *remoteHandle) result(ctx context.Context) (WorkerResult, error) {
	var r WorkerResult
	m, err := h.next(ctx, "result")
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(m.Result, &r); err != nil {
		return r, fmt.Errorf("worker result: %w", err)
	}
	return r, nil
}

func (h *remoteHandle) progress() Progress { return *h.prog.Load() }

// close closes the worker's stdin, which ends it, and waits up to 30 s
// for it to exit before killing it.
func (h *remoteHandle) close() {
	_ = h.wp.Stdin.Close()
	done := make(chan struct{})
	go func() { _ = h.wp.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = h.wp.Kill()
		<-done
	}
}

// ServeWorker is the body of a worker process ("kaiwa bench worker"): it
// reads its [Plan] as one JSON line from stdin, connects, and reports
// "connected". Then, for each [Window] line: it runs the window, reports
// "published" once its publishers have stopped, waits for the finish line
// (every worker has published), drains, and reports the result. At the
// end of stdin it closes its clients. Every report is one JSON line on stdout, with a
// progress line every second. Closing stdin aborts the worker; the plan's
// deadline bounds it in any case.
func ServeWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	br := bufio.NewReaderSize(stdin, 64<<10)
	line, err := br.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("read plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(line, &p); err != nil {
		return fmt.Errorf("decode plan: %w", err)
	}
	if _, err := RaiseFileLimit(); err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, p.Deadline)
	defer cancel()
	var mu sync.Mutex
	report := func(m workerMsg) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	w, err := newWorker(p)
	if err != nil {
		_ = report(workerMsg{Kind: "error", Error: err.Error()})
		return err
	}
	defer w.close()
	// The rest of stdin: windows and finishes, then end of file, which
	// ends the worker (aborting a window in progress).
	windows := make(chan Window, 1)
	finish := make(chan []uint64, 1)
	eof := make(chan struct{})
	go func() {
		defer cancel()
		defer close(eof)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				var c control
				if json.Unmarshal(line, &c) == nil {
					if c.Window != nil {
						windows <- *c.Window
					}
					if c.Finish {
						finish <- c.Acked
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pr := w.progress()
				_ = report(workerMsg{Kind: "progress", Progress: &pr})
			case <-stopProgress:
				return
			}
		}
	}()
	defer func() { close(stopProgress); <-progressDone }()

	st := w.connect(ctx)
	if err := report(workerMsg{Kind: "connected", Connected: &st}); err != nil {
		return err
	}
	for {
		var win Window
		select {
		case win = <-windows:
		case <-eof:
			return nil // the coordinator is done with this worker
		case <-ctx.Done():
			select {
			case <-eof:
				return nil // the end of stdin cancelled the context
			default:
			}
			return fmt.Errorf("waiting for a window: %w", ctx.Err())
		}
		partial := w.run(ctx, win)
		if err := report(workerMsg{Kind: "published", Acked: w.acked()}); err != nil {
			return err
		}
		var acked []uint64
		select {
		case acked = <-finish:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the finish: %w", ctx.Err())
		}
		res := w.finish(ctx, partial, acked)
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if err := report(workerMsg{Kind: "result", Result: b}); err != nil {
			return err
		}
	}
}

// progressLoop prints one line a second about all workers until the
// returned stop is called.
func progressLoop(out io.Writer, scenario string, total int, hs []handle) (stop func()) {
	if out == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		began := time.Now()
		var prev Progress
		prevT := began
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var sum Progress
				for _, h := range hs {
					p := h.progress()
					if sum.Phase == "" || phaseOrder[p.Phase] < phaseOrder[sum.Phase] {
						sum.Phase = p.Phase
					}
					sum.Connected += p.Connected
					sum.Failed += p.Failed
					sum.Sent += p.Sent
					sum.Delivered += p.Delivered
					sum.Errors += p.Errors
					sum.Dropped += p.Dropped
					sum.P50 = max(sum.P50, p.P50)
					sum.P99 = max(sum.P99, p.P99)
					sum.Window = max(sum.Window, p.Window)
				}
				dt := now.Sub(prevT).Seconds()
				fmt.Fprintf(out, "[%4.0fs] %s %-7s w%d conns %d/%d failed %d | sent %.0f/s delivered %.0f/s | p50 %.1f ms p99 %.1f ms | errors %d dropped %d\n",
					now.Sub(began).Seconds(), scenario, sum.Phase, sum.Window, sum.Connected, total, sum.Failed,
					float64(sum.Sent-prev.Sent)/dt, float64(sum.Delivered-prev.Delivered)/dt,
					ms(sum.P50), ms(sum.P99), sum.Errors, sum.Dropped)
				prev, prevT = sum, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

// phaseOrder orders the phases a worker goes through; the progress line
// shows the earliest phase any worker is in.
var phaseOrder = map[string]int{"start": 0, "connect": 1, "run": 2, "drain": 3, "done": 4}

// containsColonHost reports whether the URL's host is an IPv6 literal.
func containsColonHost(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && strings.Contains(u.Hostname(), ":")
}
