package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

var kaiwaBin string

func TestMain(m *testing.M) { os.Exit(testenv.RunWithKaiwa(m, &kaiwaBin)) }

// proc is a running kaiwa process whose output is kept for failure reports.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *syncBuffer
	stopped bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(kaiwaBin, args...), out: &syncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if p.stopped {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// waitSocket polls GET /healthz on a unix socket until it answers.
func waitSocket(t *testing.T, sock string, p *proc) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get("http://kaiwa/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("%s did not become healthy: %v\n%s", p.name, err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cluster is one Kaiwa deployment for a test.
type cluster struct {
	t      *testing.T
	dsn    string
	nats   string
	nginx  *testenv.NginxProc
	tls    *tls.Config
	http   *http.Client
	socket string
	reg    *versions.Registry
	vfile  string
	uaArgs []string
	// uas are the running UA processes by version.
	uas map[string][]*proc
}

// perVersion is the number of UA processes each live version runs.
const perVersion = 2

type clusterOpts struct {
	// apiDSN, when set, is the DSN the API process uses (e.g. through a
	// proxy the test can cut).
	apiDSN func(dsn string) string
	// versions is the content of a versions file (empty: the built-in
	// registry).
	versions string
	// uaArgs are extra flags for every UA process; busArgs for every
	// process (they must agree on the stream).
	uaArgs  []string
	busArgs []string
	// apiArgs, when set, gives extra flags for version v's API process.
	apiArgs func(v string) []string
}

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: testenv.MySQL(t), nats: testenv.NATS(t), uas: map[string][]*proc{},
		uaArgs: append(slices.Clone(o.uaArgs), o.busArgs...)}
	c.socket = t.TempDir()
	apiDSN := c.dsn
	if o.apiDSN != nil {
		apiDSN = o.apiDSN(c.dsn)
	}
	if o.versions != "" {
		c.vfile = filepath.Join(t.TempDir(), "versions.json")
		if err := os.WriteFile(c.vfile, []byte(o.versions), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := versions.Load(c.vfile)
	if err != nil {
		t.Fatal(err)
	}
	c.reg = reg
	for i, v := range reg.Live() {
		apiSock := nginx.APISocket(c.socket, v.Name)
		args := []string{"api", "--listen", "unix:" + apiSock, "--version", v.Name,
			"--mysql-dsn", apiDSN, "--nats-url", c.nats, "--log-level", "warn", "--versions", c.vfile}
		if i == 0 {
			args = append(args, "--logwriter")
		}
		args = append(args, o.busArgs...)
		if o.apiArgs != nil {
			args = append(args, o.apiArgs(v.Name)...)
		}
		api := start(t, "api-"+v.Name, args...)
		waitSocket(t, apiSock, api)
		for i := range perVersion {
			c.uas[v.Name] = append(c.uas[v.Name], c.startUA(v.Name, i))
		}
	}
	c.nginx = testenv.Nginx(t, nginx.Config{
		Registry:        reg,
		Sockets:         nginx.DirSockets(c.socket, perVersion),
		WorkerProcesses: 1, // round-robin over the UAs is then strict
		// Every test client comes from 127.0.0.1, hundreds at once.
		PerIPConns:        10000,
		PerIPUpgradeRate:  1000,
		PerIPUpgradeBurst: 1000,
	})
	pem, err := os.ReadFile(c.nginx.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c.tls = &tls.Config{RootCAs: pool}
	c.http = &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}, Timeout: 10 * time.Second}
	return c
}

// startUA starts UA process i of version v and waits until it is healthy.
func (c *cluster) startUA(v string, i int) *proc {
	c.t.Helper()
	sock := nginx.UASocket(c.socket, v, i)
	args := append([]string{"ua", "--listen", "unix:" + sock, "--version", v,
		"--nats-url", c.nats, "--log-level", "warn", "--versions", c.vfile}, c.uaArgs...)
	p := start(c.t, fmt.Sprintf("ua-%s-%d", v, i), args...)
	waitSocket(c.t, sock, p)
	return p
}

// stop sends SIGTERM to a process and waits for it to exit.
func (p *proc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s after SIGTERM\n%s", p.name, within, p.out.String())
	}
	p.stopped = true
}

// tenant creates a tenant with the operator CLI and returns its API key.
func (c *cluster) tenant(name string) string {
	c.t.Helper()
	out, err := exec.Command(kaiwaBin, "tenant", "create", name, "--json", "--mysql-dsn", c.dsn).CombinedOutput()
	if err != nil {
		c.t.Fatalf("tenant create: %v\n%s", err, out)
	}
	var r struct {
		Tenant string `json:"tenant"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Tenant != name || r.APIKey == "" {
		c.t.Fatalf("tenant create printed %s (%v)", out, err)
	}
	return r.APIKey
}

// api calls the v1 tenant API through nginx over TLS and decodes the JSON
// answer.
func (c *cluster) api(method, path, key string, body any) (int, map[string]any) {
	c.t.Helper()
	return c.apiV("v1", method, path, key, body)
}

// mustV calls version v's API and fails the test unless the status is want.
func (c *cluster) mustV(v string, want int, method, path, key string, body any) map[string]any {
	c.t.Helper()
	status, m := c.apiV(v, method, path, key, body)
	if status != want {
		c.t.Fatalf("%s /%s%s = %d %v, want %d", method, v, path, status, m, want)
	}
	return m
}

// apiV calls version v's tenant API.
func (c *cluster) apiV(v, method, path, key string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			data, _ := json.Marshal(b)
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, c.nginx.HTTPSURL+"/"+v+"/api"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Fatalf("%s %s: %d with non-JSON body %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m
}

// must calls the API and fails the test unless the status is want.
func (c *cluster) must(want int, method, path, key string, body any) map[string]any {
	c.t.Helper()
	status, m := c.api(method, path, key, body)
	if status != want {
		c.t.Fatalf("%s %s = %d %v, want %d", method, path, status, m, want)
	}
	return m
}

func (c *cluster) token(key, user string, join, publish []string) string {
	c.t.Helper()
	m := c.must(201, "POST", "/tokens", key, map[string]any{
		"user": user, "name": strings.ToUpper(user[:1]) + user[1:], "ttl_seconds": 600, "join": join, "publish": publish,
	})
	return m["token"].(string)
}

func (c *cluster) dial(token string) *client.Conn { return c.dialAs(token, "kaiwa-e2e") }

// dialV dials version v's WebSocket with options (TLS filled in).
func (c *cluster) dialV(v string, o client.Options) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o.TLSConfig = c.tls
	return client.Dial(ctx, c.nginx.WSSURL+"/"+v+"/ws", o)
}

// dialAs connects with a User-Agent naming the client, so the access log
// tells which UA served it.
func (c *cluster) dialAs(token, agent string) *client.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, c.nginx.WSSURL+"/v1/ws", client.Options{
		Token: token, TLSConfig: c.tls, Header: http.Header{"User-Agent": {agent}},
	})
	if err != nil {
		c.t.Fatalf("dial: %v", err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// logged returns the channel's message log, walking every page.
func (c *cluster) logged(key, ch string) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	after := ""
	for {
		path := "/channels/" + ch + "/messages?limit=7"
		if after != "" {
			path += "&after=" + after
		}
		m := c.must(200, "GET", path, key, nil)
		for _, x := range m["messages"].([]any) {
			all = append(all, x.(map[string]any))
		}
		next, _ := m["next"].(string)
		if next == "" {
			return all
		}
		after = next
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nextAny returns the next event of c, failing after 10 s.
func nextAny(t *testing.T, c *client.Conn) client.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("connection ended: %v", c.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for an event")
	}
	return client.Event{}
}

// settings changes a tenant's settings with the operator CLI, which tells
// the servers.
func (c *cluster) settings(tenant, patch string) {
	c.t.Helper()
	out, err := exec.Command(kaiwaBin, "tenant", "settings", tenant, "--set", patch,
		"--mysql-dsn", c.dsn, "--nats-url", c.nats).CombinedOutput()
	if err != nil {
		c.t.Fatalf("tenant settings: %v\n%s", err, out)
	}
}

// upstreams maps each closed WebSocket session's User-Agent to the UA
// socket nginx sent it to, from the access log (nginx writes a WebSocket's
// line when it closes). It waits until every agent in want is there.
func (c *cluster) upstreams(t *testing.T, want ...string) map[string]string {
	t.Helper()
	up := map[string]string{}
	testenv.Eventually(t, "sessions in the access log", 10*time.Second, func() bool {
		for _, line := range c.nginx.AccessLog(t) {
			var e struct {
				Status   int    `json:"status"`
				Upstream string `json:"upstream_addr"`
				Agent    string `json:"user_agent"`
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.Status == 101 {
				up[e.Agent] = e.Upstream
			}
		}
		for _, a := range want {
			if up[a] == "" {
				return false
			}
		}
		return true
	})
	return up
}
