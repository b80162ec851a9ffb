package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// This file registers the TypeScript SDK's runners (sdk/js): the same
// scenarios played by the SDK in Node (test/conformance.mjs), and in
// headless Chromium (test/browser-conformance.mjs, a page that loads the
// built ESM, driven by playwright-core), so that the SDK is shown to work
// in a real browser. Each prints a line per scenario and version; a FAIL
// line fails the test.
//
// They need Node, the built SDK (sdk/js/dist) and its node_modules, and
// Chromium (/usr/bin/chromium, or $KAIWA_CHROMIUM): scripts/deps.sh test
// installs them. Without them the runners are skipped, saying what is
// missing, unless CI is set: then they fail.

// jsRunner is an element of runners.
type jsRunner = struct {
	name string
	run  func(t *testing.T, control, scenarios string)
}

func init() {
	runners = append(runners, jsRunner{"js-node", runJSNode}, jsRunner{"js-chromium", runJSChromium})
}

// jsTimeout bounds one runner's whole play.
const jsTimeout = 5 * time.Minute

func runJSNode(t *testing.T, control, scenarios string) {
	node, dir := testenv.JSSDK(t, "ws")
	runNode(t, node, dir, []string{"test/conformance.mjs"}, control, scenarios)
}

func runJSChromium(t *testing.T, control, scenarios string) {
	node, dir := testenv.JSSDK(t, "playwright-core")
	runNode(t, node, dir, []string{"test/browser-conformance.mjs"}, control, scenarios, "KAIWA_CHROMIUM="+testenv.Chromium(t))
}

// runNode runs a runner script in dir, its output streamed to the test
// log line by line, and fails t on a FAIL line or a non-zero exit.
func runNode(t *testing.T, node, dir string, args []string, control, scenarios string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{
		"KAIWA_CONFORMANCE_CONTROL=" + control,
		"KAIWA_CONFORMANCE_SCENARIOS=" + scenarios,
	}, env...)...)
	out := &testLog{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out.flush()
	if err != nil {
		t.Fatalf("node %s: %v", strings.Join(args, " "), err)
	}
}

// testLog writes what a process prints to the test log, a line at a
// time; a line that starts with "FAIL" is a test error.
type testLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // not a whole line yet
			return len(p), nil
		}
		l.line(strings.TrimRight(line, "\r\n"))
	}
}

func (l *testLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.line(l.buf.String())
		l.buf.Reset()
	}
}

func (l *testLog) line(s string) {
	if strings.HasPrefix(s, "FAIL") {
		l.t.Error(s)
		return
	}
	l.t.Log(s)
}
