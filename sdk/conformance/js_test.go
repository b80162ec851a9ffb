package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// missing skips t because something a runner needs is not there, or
// fails it when CI is set.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this fails (scripts/deps.sh test installs what is missing)", what)
	}
	t.Skipf("skipped: %s (scripts/deps.sh test installs what is missing; with CI set this fails)", what)
}

// jsSDK returns node and the SDK's directory, once the built SDK and the
// node modules named are there.
func jsSDK(t *testing.T, modules ...string) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "no node on PATH")
	}
	dir, err = filepath.Abs(filepath.Join("..", "js"))
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"dist/index.js"}
	for _, m := range modules {
		need = append(need, filepath.Join("node_modules", m, "package.json"))
	}
	for _, f := range need {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			missing(t, "sdk/js/"+f+" is missing (cd sdk/js && npm ci && npm run build)")
		}
	}
	return node, dir
}

func runJSNode(t *testing.T, control, scenarios string) {
	node, dir := jsSDK(t, "ws")
	runNode(t, node, dir, []string{"test/conformance.mjs"}, control, scenarios)
}

// chromium returns the Chromium the browser runs use: $KAIWA_CHROMIUM,
// else Debian's /usr/bin/chromium.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("KAIWA_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		missing(t, "no Chromium at "+p+" (apt-get install chromium, or set KAIWA_CHROMIUM)")
	}
	return p
}

func runJSChromium(t *testing.T, control, scenarios string) {
	node, dir := jsSDK(t, "playwright-core")
	runNode(t, node, dir, []string{"test/browser-conformance.mjs"}, control, scenarios, "KAIWA_CHROMIUM="+chromium(t))
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
