package devstack

import (
	"bytes"
	"context"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer read by the test while children write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recordHandler keeps every log record's message and attributes.
type recordHandler struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: h, attrs: as}
}
func (h *recordHandler) WithGroup(string) slog.Handler { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	return h.add(r, nil)
}

func (h *recordHandler) add(r slog.Record, pre []slog.Attr) error {
	m := map[string]any{"msg": r.Message}
	for _, a := range pre {
		m[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, m)
	return nil
}

func (h *recordHandler) records(msg string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, r := range h.recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

type attrHandler struct {
	h     *recordHandler
	attrs []slog.Attr
}

func (a *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: a.h, attrs: append(append([]slog.Attr{}, a.attrs...), as...)}
}
func (a *attrHandler) WithGroup(string) slog.Handler { return a }
func (a *attrHandler) Handle(_ context.Context, r slog.Record) error {
	return a.h.add(r, a.attrs)
}

func sh(name, script string) Child {
	return Child{Name: name, Path: "/bin/sh", Args: []string{"-c", script}}
}

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	logs := &recordHandler{}
	s := &Supervisor{Stdout: &out, Logger: slog.New(logs), MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	p := s.Start(context.Background(), sh("flaky", "echo started; exit 3"))
	t.Cleanup(p.Stop)

	testenv.Eventually(t, "5 starts", 5*time.Second, func() bool { return p.Starts() >= 5 })
	p.Stop()
	if n := strings.Count(out.String(), "[flaky] started\n"); n < 5 {
		t.Errorf("%d prefixed start lines, want at least 5:\n%s", n, out.String())
	}
	var backoffs []time.Duration
	for _, r := range logs.records("child exited; restarting") {
		if r["child"] != "flaky" {
			t.Errorf("record without the child's name: %v", r)
		}
		backoffs = append(backoffs, r["after"].(time.Duration))
	}
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond}
	if len(backoffs) < len(want) {
		t.Fatalf("backoffs %v, want at least %v", backoffs, want)
	}
	for i, w := range want {
		if backoffs[i] != w {
			t.Errorf("backoffs %v, want them to double from 20ms to 80ms", backoffs)
			break
		}
	}
}

func TestSupervisorResetsBackoffAfterLongRun(t *testing.T) {
	t.Parallel()
	logs := &recordHandler{}
	s := &Supervisor{Logger: slog.New(logs), MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, ResetAfter: 50 * time.Millisecond}
	p := s.Start(context.Background(), sh("steady", "sleep 0.08; exit 1"))
	t.Cleanup(p.Stop)
	testenv.Eventually(t, "4 starts", 5*time.Second, func() bool { return p.Starts() >= 4 })
	p.Stop()
	for _, r := range logs.records("child exited; restarting") {
		if r["after"].(time.Duration) != 10*time.Millisecond {
			t.Errorf("backoff %v after a run longer than ResetAfter, want 10ms", r["after"])
		}
	}
}

func TestSupervisorStopsOnCancel(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	s := &Supervisor{Stdout: &out}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := s.Start(ctx, sh("svc", `trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.02; done`))
	testenv.Eventually(t, "ready", 5*time.Second, func() bool { return strings.Contains(out.String(), "[svc] ready\n") })
	pid := p.Pid()
	if pid == 0 {
		t.Fatal("no pid while running")
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child still supervised 5s after cancel")
	}
	if !strings.Contains(out.String(), "[svc] got-term\n") {
		t.Errorf("child was not asked to stop with SIGTERM:\n%s", out.String())
	}
	if p.Starts() != 1 {
		t.Errorf("child started %d times; a stopped child must not restart", p.Starts())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still exists", pid)
	}
}

func TestSupervisorKillsAfterDrainTimeout(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	s := &Supervisor{Stdout: &out, DrainTimeout: 100 * time.Millisecond}
	// The ignored TERM is inherited by sleep, so the whole group ignores it.
	p := s.Start(context.Background(), sh("stubborn", `trap '' TERM; echo ready; while :; do sleep 0.02; done`))
	testenv.Eventually(t, "ready", 5*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
	pid := p.Pid()
	began := time.Now()
	p.Stop()
	if took := time.Since(began); took < 100*time.Millisecond || took > 3*time.Second {
		t.Errorf("Stop took %v; want the 100ms drain timeout, then a kill", took)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d survived SIGKILL", pid)
	}
}

func TestSupervisorPrefixesOutput(t *testing.T) {
	t.Parallel()
	var stdout, stderr lockedBuffer
	s := &Supervisor{Stdout: &stdout, Stderr: &stderr, MinBackoff: time.Hour}
	a := s.Start(context.Background(), sh("alpha", `i=0; while [ $i -lt 200 ]; do echo "alpha line $i"; i=$((i+1)); done; printf 'no newline'; echo oops >&2; sleep 60`))
	b := s.Start(context.Background(), sh("beta", `i=0; while [ $i -lt 200 ]; do echo "beta line $i"; i=$((i+1)); done; sleep 60`))
	testenv.Eventually(t, "output", 5*time.Second, func() bool {
		return strings.Count(stdout.String(), "\n") >= 400 && strings.Contains(stderr.String(), "oops")
	})
	StopAll(a, b)

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var alpha, beta int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "[alpha] alpha line "):
			alpha++
		case strings.HasPrefix(l, "[beta] beta line "):
			beta++
		case l == "[alpha] no newline":
		default:
			t.Errorf("mixed or unprefixed line %q", l)
		}
	}
	if alpha != 200 || beta != 200 {
		t.Errorf("got %d alpha and %d beta lines, want 200 each", alpha, beta)
	}
	if !strings.Contains(stdout.String(), "[alpha] no newline\n") {
		t.Error("last partial line was not flushed at exit")
	}
	if stderr.String() != "[alpha] oops\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestSupervisorBeforeRunsEachStart(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	s := &Supervisor{MinBackoff: 10 * time.Millisecond}
	c := sh("prep", "exit 1")
	c.Before = func() error { mu.Lock(); calls++; mu.Unlock(); return nil }
	p := s.Start(context.Background(), c)
	testenv.Eventually(t, "3 starts", 5*time.Second, func() bool { return p.Starts() >= 3 })
	p.Stop()
	mu.Lock()
	defer mu.Unlock()
	if calls < p.Starts() {
		t.Errorf("Before ran %d times for %d starts", calls, p.Starts())
	}
}
