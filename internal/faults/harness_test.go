package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/kaiwa-chat/kaiwa/internal/devstack"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
)

// Environment variables that turn the slow tests on.
const (
	faultsEnv  = "KAIWA_FAULTS"  // "1": run the fault suite
	soakEnv    = "KAIWA_SOAK"    // a duration ("5m"): run the soak that long
	clusterEnv = "KAIWA_CLUSTER" // "1": run the cluster suite (root: network namespaces)
)

// kaiwaBin is the kaiwa binary the stack runs.
var kaiwaBin string

func TestMain(m *testing.M) {
	if os.Getenv(faultsEnv) == "" && os.Getenv(soakEnv) == "" && os.Getenv(clusterEnv) == "" {
		os.Exit(m.Run()) // every test skips itself
	}
	os.Exit(testenv.RunWithKaiwa(m, &kaiwaBin))
}

// stackConfig holds the tunables of a test stack.
type stackConfig struct {
	// DrainWindow is the UAs' drain window (kaiwa ua --drain-window).
	DrainWindow time.Duration
	// MinBackoff and MaxBackoff bound the supervisor's restart backoff.
	MinBackoff, MaxBackoff time.Duration
	// Tenant is the tenant the test's users belong to.
	Tenant string
}

func defaultStackConfig() stackConfig {
	return stackConfig{DrainWindow: 2 * time.Second, MinBackoff: time.Second, MaxBackoff: 4 * time.Second, Tenant: "faults"}
}

// stack is a whole Kaiwa deployment on this machine whose parts the test
// can kill: MariaDB and NATS are processes of the test's own, the rest is
// a devstack.Stack.
type stack struct {
	cfg   stackConfig
	dir   string
	out   *sink
	db    *devstack.MariaDB
	dbDir string
	dsn   string
	nats  *natsProc
	st    *devstack.Stack
	// exits, for a stack devstack does not run (the cluster), returns
	// the processes that exited without the test asking, with how often.
	exits func() map[string]int
	key   string // the tenant's API key
	tls   *tls.Config
	https string // nginx's TLS address

	mu sync.Mutex
	// starts is how many times each supervised child should have been
	// started: once, plus the kills and restarts the test did.
	starts map[string]int
	// deleted holds the message ids the probers meant to delete before
	// they existed (ids are global to the stream, so a later round's
	// message may bear one), and whether the API said it deleted them.
	// A prober guesses a future id from the acknowledgements it has seen;
	// under a fault a message can be in the stream before its sender's
	// acknowledgement arrives, so the API may rightly delete it.
	deleted map[string]bool
}

// deleting records that a prober deletes id, and whether the API answered
// that it did.
func (s *stack) deleting(id string, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[id] = s.deleted[id] || done
}

// wasDeleted reports whether a prober deleted id, and whether the API
// said it deleted a message.
func (s *stack) wasDeleted(id string) (probed, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	done, probed = s.deleted[id]
	return probed, done
}

// deletedWithin reports whether the API deleted, for a prober, a message
// whose seq is in (last, prev]: a gap a member sees there is the deleted
// message (protocol.md §14.4). A message id ends with its stream seq.
func (s *stack) deletedWithin(last, prev uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, done := range s.deleted {
		i := strings.LastIndexByte(id, '-')
		seq, err := strconv.ParseUint(id[i+1:], 10, 64)
		if done && err == nil && seq > last && seq <= prev {
			return true
		}
	}
	return false
}

// startStack starts a stack for the whole test and stops it in t.Cleanup.
func startStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	dir, err := os.MkdirTemp("", "kaiwa-faults") // short: the MariaDB socket lives here
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{cfg: cfg, dir: dir, starts: map[string]int{}, deleted: map[string]bool{}}
	s.out = newSink(t, filepath.Join(dir, "stack.log"))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("KAIWA_FAULTS_KEEP") != "" {
			t.Logf("the stack's output and data are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.dbDir = filepath.Join(dir, "mysql")
	s.db, err = devstack.StartMariaDB(ctx, s.dbDir, s.out.prefixed("mariadb"))
	if err != nil {
		t.Fatal(err)
	}
	s.dsn = s.db.DSN
	t.Cleanup(func() { _ = s.db.Stop() })

	s.nats = &natsProc{addr: testenv.FreeAddr(t), store: filepath.Join(dir, "nats"), out: s.out.prefixed("nats")}
	s.nats.start(t)
	t.Cleanup(s.nats.kill)

	s.https = testenv.FreeAddr(t)
	logger := slog.New(slog.NewTextHandler(s.out.prefixed("dev"), nil))
	s.st, err = devstack.Start(ctx, devstack.Config{
		Exe:          kaiwaBin,
		VarDir:       filepath.Join(dir, "var"),
		MySQLDSN:     s.dsn,
		NATSURL:      "nats://" + s.nats.addr,
		HTTPListen:   testenv.FreeAddr(t),
		HTTPSListen:  s.https,
		DrainWindow:  cfg.DrainWindow,
		DrainTimeout: 10 * time.Second,
		MinBackoff:   cfg.MinBackoff,
		MaxBackoff:   cfg.MaxBackoff,
		Nginx: func(c *nginx.Config) {
			// Each process may hold at most 20,000 files: nginx sets its
			// limit to twice this.
			c.WorkerConnections = 4096
			c.ShutdownTimeout = 3 * time.Second
		},
		Quiet:  true,
		Stdout: s.out,
		Stderr: s.out,
		Logger: logger,
	})
	if err != nil {
		t.Fatalf("start the stack: %v\n%s", err, s.out.tail(40))
	}
	t.Cleanup(s.st.Stop)
	for _, p := range s.st.Processes() {
		s.starts[p.Name()] = 1
	}

	pem, err := os.ReadFile(s.st.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	s.tls = &tls.Config{RootCAs: pool}

	s.key = s.tenant(t, cfg.Tenant)
	s.kaiwa(t, "tenant", "settings", cfg.Tenant, "--mysql-dsn", s.dsn, "--nats-url", "nats://"+s.nats.addr,
		"--set", `{"rate_ops":50,"rate_burst":100,"api_rate":5000,"api_burst":5000,"max_conns_per_user":20}`)
	return s
}

// kaiwa runs the kaiwa binary to completion and returns its stdout.
func (s *stack) kaiwa(t testing.TB, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(kaiwaBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kaiwa %s: %v\n%s", args[0], err, errb.String())
	}
	return out.Bytes()
}

// tenant creates a tenant and returns its API key.
func (s *stack) tenant(t testing.TB, name string) string {
	t.Helper()
	var r struct {
		APIKey string `json:"api_key"`
	}
	out := s.kaiwa(t, "tenant", "create", name, "--json", "--mysql-dsn", s.dsn)
	if err := json.Unmarshal(out, &r); err != nil || r.APIKey == "" {
		t.Fatalf("tenant create printed %q (%v)", out, err)
	}
	return r.APIKey
}

// expectStart records that the test made child name start once more (a
// kill or a restart).
func (s *stack) expectStart(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts[name]++
}

// unexpectedStarts returns the children started more often than the
// test's faults explain, with how many times.
func (s *stack) unexpectedStarts() map[string]int {
	if s.st == nil {
		return s.exits()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.st.Processes() {
		if n := p.Starts() - s.starts[p.Name()]; n > 0 {
			out[p.Name()] = n
		}
	}
	return out
}

// waitHealthy polls until every child answers /healthz, NATS accepts
// connections and MariaDB answers, failing the test after timeout.
func (s *stack) waitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var names []string
	for _, p := range s.st.Processes() {
		if p.Name() != "nginx" {
			names = append(names, p.Name())
		}
	}
	if err := s.st.WaitReady(ctx, names...); err != nil {
		t.Fatalf("stack not healthy: %v", err)
	}
	if err := waitTCP(ctx, s.nats.addr); err != nil {
		t.Fatalf("NATS not answering: %v", err)
	}
	if err := s.pingDB(ctx); err != nil {
		t.Fatalf("MariaDB not answering: %v", err)
	}
}

// pingDB polls MariaDB until it answers or ctx ends.
func (s *stack) pingDB(ctx context.Context) error {
	db, err := sql.Open("mysql", s.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restartDB starts MariaDB again on the same directory after a kill.
func (s *stack) restartDB(t testing.TB) {
	t.Helper()
	select {
	case <-s.db.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("MariaDB did not exit after SIGKILL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := devstack.StartMariaDB(ctx, s.dbDir, s.out.prefixed("mariadb"))
	if err != nil {
		t.Fatalf("restart MariaDB: %v", err)
	}
	s.db = db
}

// waitChild polls the child's /healthz until it answers, and returns when.
func (s *stack) waitChild(t testing.TB, name string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.st.WaitReady(ctx, name); err != nil {
		t.Fatalf("%s did not come back: %v", name, err)
	}
	return time.Now()
}

// natsProc is "kaiwa nats" in a process of its own, so that the test can
// kill it and start it again on the same port and store.
type natsProc struct {
	addr, store string
	out         io.Writer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (n *natsProc) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(kaiwaBin, "nats", "--listen", n.addr, "--store", n.store)
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitTCP(ctx, n.addr); err != nil {
		t.Fatalf("NATS not answering on %s: %v", n.addr, err)
	}
}

// kill kills NATS with SIGKILL and waits until it is gone.
func (n *natsProc) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// alive reports whether NATS is running.
func (n *natsProc) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func waitTCP(ctx context.Context, addr string) error {
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", addr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sink collects every process's output in one file and watches it for
// panics and fatal errors.
type sink struct {
	mu     sync.Mutex
	f      *os.File
	lines  []string // the last lines, for failure reports
	panics []string // lines that tell of a panic or a fatal error
}

func newSink(t testing.TB, path string) *sink {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &sink{f: f}
}

// badLine reports whether a line of output tells of a crash.
func badLine(l string) bool {
	return strings.Contains(l, "panic:") || strings.Contains(l, "fatal error:") || strings.Contains(l, "DATA RACE")
}

// Write implements io.Writer; the supervisor writes whole lines.
func (s *sink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		if badLine(l) {
			s.panics = append(s.panics, strings.TrimSpace(l))
		}
		s.lines = append(s.lines, l)
		if len(s.lines) > 2000 {
			s.lines = s.lines[1000:]
		}
	}
	return s.f.Write(b)
}

// crashes returns how many crash lines were seen, and the first ones.
func (s *sink) crashes() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.panics), s.panics[:min(len(s.panics), 5)]
}

// tail returns the last n lines written.
func (s *sink) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines[max(0, len(s.lines)-n):], "")
}

// prefixed returns a writer that writes whole lines to the sink, each
// prefixed with "[name] ".
func (s *sink) prefixed(name string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = s.Write([]byte("[" + name + "] " + sc.Text() + "\n"))
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return pw
}

// apiClient calls the tenant API through nginx.
type apiClient struct {
	base string // https://host:port
	key  string
	http *http.Client
}

func (s *stack) apiClient(timeout time.Duration) *apiClient {
	return &apiClient{base: "https://" + s.https, key: s.key, http: &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{TLSClientConfig: s.tls, MaxIdleConnsPerHost: 16},
	}}
}

// call calls version v's API. err is set when no answer came.
func (a *apiClient) call(v, method, path string, body any) (status int, m map[string]any, err error) {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.base+"/"+v+"/api"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if len(data) > 0 {
		_ = json.Unmarshal(data, &m)
	}
	return resp.StatusCode, m, nil
}

// must calls the API, retrying a 503 for a while, and fails the test
// unless the status is want.
func (a *apiClient) must(t testing.TB, want int, v, method, path string, body any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, m, err := a.call(v, method, path, body)
		if err == nil && status == want {
			return m
		}
		if time.Now().After(deadline) || (err == nil && status != http.StatusServiceUnavailable && status != http.StatusBadGateway) {
			t.Fatalf("%s /%s/api%s = %d %v (%v), want %d", method, v, path, status, m, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
