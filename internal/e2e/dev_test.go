package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// devProc is "kaiwa dev" running as a process, as a developer runs it.
type devProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	https  string
	key    string
	tls    *tls.Config
}

// startDev runs kaiwa dev on the test's MySQL database and NATS with a
// 1 s drain window and no demo page (args add flags), and returns once its
// walkthrough is printed.
func startDev(t *testing.T, args ...string) *devProc {
	t.Helper()
	varDir := t.TempDir()
	d := &devProc{out: &syncBuffer{}, exited: make(chan struct{}), https: testenv.FreeAddr(t)}
	d.cmd = exec.Command(kaiwaBin, append([]string{"dev", "--var", varDir, "--mysql-dsn", testenv.MySQL(t), "--nats-url", testenv.NATS(t),
		"--http", testenv.FreeAddr(t), "--https", d.https, "--drain-window", "1s", "--demo-dir", ""}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("--- kaiwa dev output:\n%s", d.out.String())
		}
	})
	testenv.Eventually(t, "the dev stack's walkthrough", 60*time.Second, func() bool {
		select {
		case <-d.exited:
			t.Fatalf("kaiwa dev exited:\n%s", d.out.String())
		default:
		}
		return strings.Contains(d.out.String(), "Ctrl-C stops everything")
	})
	key, err := os.ReadFile(filepath.Join(varDir, "demo-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	d.key = strings.TrimSpace(string(key))
	pem, err := os.ReadFile(filepath.Join(varDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d.tls = &tls.Config{RootCAs: pool}
	return d
}

// api calls version v's tenant API of the dev stack with the demo key.
func (d *devProc) api(t *testing.T, v, method, path string, body any, want int) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "https://"+d.https+"/"+v+"/api"+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+d.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: d.tls}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if resp.StatusCode != want {
		t.Fatalf("%s /%s/api%s = %d %s, want %d", method, v, path, resp.StatusCode, b, want)
	}
	return m
}

// goodbye is what one connection saw of the end of its session.
type goodbye struct {
	closing, reconnect bool // in this order when both
	code               int
	ok                 bool // a close frame arrived
}

// devClient keeps one user connected to the dev stack, dialing again
// whenever its connection ends, and records how each connection ended.
type devClient struct {
	v, token string

	mu    sync.Mutex
	ends  []goodbye
	conn  *client.Conn
	ready int
}

func (dc *devClient) run(ctx context.Context, d *devProc) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := client.Dial(dctx, "wss://"+d.https+"/"+dc.v+"/ws", client.Options{Token: dc.token, TLSConfig: d.tls})
		cancel()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		dc.mu.Lock()
		dc.conn = conn
		dc.ready++
		dc.mu.Unlock()
		var g goodbye
		for ev := range conn.Events() {
			switch ev.Op {
			case "reconnect":
				g.reconnect = !g.closing
			case "closing":
				g.closing = true
			}
		}
		g.code, _, g.ok = conn.CloseStatus()
		conn.Close()
		dc.mu.Lock()
		dc.conn = nil
		if ctx.Err() == nil || g.ok || g.closing {
			dc.ends = append(dc.ends, g)
		}
		dc.mu.Unlock()
	}
}

// checkEnds fails the test unless every ended connection was told closing
// (v2: reconnect first) and closed with 1001.
func (dc *devClient) checkEnds(t *testing.T, when string, want int) {
	t.Helper()
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if len(dc.ends) < want {
		t.Errorf("%s %s: %d connections ended, want at least %d", when, dc.v, len(dc.ends), want)
	}
	for _, g := range dc.ends {
		if !g.closing || !g.ok || g.code != 1001 || (dc.v == "v2" && !g.reconnect) {
			t.Errorf("%s: a %s connection ended with closing=%v reconnect=%v close=%d (frame %v); want closing (v2: reconnect first) and 1001",
				when, dc.v, g.closing, g.reconnect, g.code, g.ok)
		}
	}
	dc.ends = nil
}

// SIGHUP rolls the UAs and Ctrl-C stops the stack; either way every client
// is told closing (v2: reconnect) through nginx before its connection
// closes with 1001, and the dev log shows connects and API calls but
// never a key or token.
func TestDevDrainsClientsOnSIGHUPAndCtrlC(t *testing.T) {
	d := startDev(t)
	d.api(t, "v1", "PUT", "/channels/world", map[string]any{"kind": "open"}, 201)
	var clients []*devClient
	var tokens []string
	for i := range 12 {
		v := []string{"v1", "v2"}[i%2]
		tok := d.api(t, v, "POST", "/tokens", map[string]any{
			"user": fmt.Sprint("p", i), "name": "P", "ttl_seconds": 600, "join": []string{"*"}, "publish": []string{"*"},
		}, 201)["token"].(string)
		tokens = append(tokens, tok)
		clients = append(clients, &devClient{v: v, token: tok})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, dc := range clients {
		wg.Go(func() { dc.run(ctx, d) })
	}
	connected := func() bool {
		for _, dc := range clients {
			dc.mu.Lock()
			up := dc.conn != nil
			dc.mu.Unlock()
			if !up {
				return false
			}
		}
		return true
	}
	testenv.Eventually(t, "every client connected", 20*time.Second, connected)

	// SIGHUP: a rolling restart of the four UAs.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the rolling restart", 60*time.Second, func() bool { return strings.Contains(d.out.String(), "rolling restart done") })
	testenv.Eventually(t, "every client back after the roll", 20*time.Second, connected)
	for _, dc := range clients {
		dc.checkEnds(t, "SIGHUP", 1)
	}

	// Ctrl-C.
	began := time.Now()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("kaiwa dev still running 30s after Ctrl-C")
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("Ctrl-C took %v to stop the stack", took)
	}
	cancel()
	wg.Wait()
	for _, dc := range clients {
		dc.checkEnds(t, "Ctrl-C", 1)
	}

	// The dev log: children's starts, connects and API calls, no secrets.
	out := d.out.String()
	for _, want := range []string{`msg="child started"`, `child=ua-v2-1 pid=`, `msg="child stopped to restart"`,
		`"msg":"connect"`, `"path":"/v2/ws","status":101`, `"msg":"request"`,
		`"method":"POST","path":"/v1/api/tokens","status":201`, `"tenant":"demo"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the dev log lacks %s", want)
		}
	}
	if strings.Contains(out, "child exited; restarting") || strings.Contains(out, "did not stop in time") {
		t.Error("a child crashed or was killed")
	}
	// The walkthrough shows the demo key on purpose; nothing after it may.
	_, after, _ := strings.Cut(out, "Ctrl-C stops everything")
	for _, cred := range append([]string{d.key}, tokens...) {
		_, secret, _ := strings.Cut(cred, ":")
		if secret == "" || strings.Contains(after, secret) {
			t.Errorf("the dev log shows a credential (or it has no secret part)")
		}
	}
}
