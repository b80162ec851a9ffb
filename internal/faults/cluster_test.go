package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// cluster is the multi-host deployment scripts/cluster.sh builds from
// the deploy kit: nine hosts in network namespaces and the front on
// loopback. The rounds of the fault suite run against it through the
// front, as against a devstack.
type cluster struct {
	s      *stack
	script string
	env    []string          // the script's environment
	addr   map[string]string // scripts/cluster.sh env
	dir    string

	mu      sync.Mutex
	offsets map[string]int64 // how much of each log the sink has
	exits   map[string]int   // "[runner] exited" lines, by log
}

// clusterScript runs scripts/cluster.sh with args and returns its output.
func (c *cluster) run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.script, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/cluster.sh %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// startCluster brings the cluster up for the whole test, with a name and
// addresses of its own (a cluster of "make cluster-up" may run beside it),
// and takes it down in t.Cleanup.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the cluster suite needs root: it builds network namespaces")
	}
	dir, err := os.MkdirTemp("", "kwc") // short: unix sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{script: filepath.Join(root, "scripts/cluster.sh"), dir: dir, offsets: map[string]int64{}, exits: map[string]int{},
		env: []string{"KAIWA_CLUSTER_DIR=" + dir, "KAIWA_BIN=" + kaiwaBin, "KAIWA_CLUSTER_NAME=kwt",
			"KAIWA_CLUSTER_SUBNET=10.232", "KAIWA_FRONT_LISTEN=" + testenv.FreeAddr(t)}}
	s := &stack{cfg: defaultStackConfig(), dir: dir, starts: map[string]int{}, deleted: map[string]bool{}}
	s.cfg.Tenant = "cluster"
	s.out = newSink(t, filepath.Join(dir, "suite.log"))
	s.exits = c.unexpectedExits
	c.s = s
	t.Cleanup(func() {
		c.run(t, "down")
		if t.Failed() || os.Getenv("KAIWA_FAULTS_KEEP") != "" {
			t.Logf("the cluster's configuration, data and logs are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	began := time.Now()
	c.run(t, "up")
	fmt.Printf("CLUSTER up in %.1fs\n", time.Since(began).Seconds())
	c.addr = map[string]string{}
	for _, l := range strings.Split(c.run(t, "env"), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			c.addr[k] = v
		}
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			c.tailLogs()
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()

	pem, err := os.ReadFile(c.addr["CA"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	s.tls = &tls.Config{RootCAs: pool}
	s.https = c.addr["FRONT"]
	s.dsn = c.addr["MYSQL_DSN"]
	s.key = s.tenant(t, s.cfg.Tenant)
	s.kaiwa(t, "tenant", "settings", s.cfg.Tenant, "--mysql-dsn", s.dsn, "--nats-url", c.addr["NATS_URL"],
		"--set", `{"rate_ops":50,"rate_burst":100,"api_rate":5000,"api_burst":5000,"max_conns_per_user":20}`)
	return c
}

// tailLogs copies what the cluster's processes logged since the last
// call into the suite's sink (which watches for panics), and counts the
// runner's lines about a process that exited without the test asking.
func (c *cluster) tailLogs() {
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*", "log", "*.log"))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range logs {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(c.dir, name)
		if _, err := f.Seek(c.offsets[name], io.SeekStart); err == nil {
			rd := bufio.NewReader(f)
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					break // a partial line is read again next time
				}
				c.offsets[name] += int64(len(line))
				if strings.HasPrefix(line, "[runner] exited") {
					c.exits[strings.TrimSuffix(rel, ".log")]++
				}
				if badLine(line) || strings.HasPrefix(line, "[runner]") {
					_, _ = c.s.out.Write([]byte("[" + rel + "] " + line))
				}
			}
		}
		f.Close()
	}
}

// unexpectedExits is the stack's exits: the processes whose runner saw
// them exit (the test's kills take the runner down too).
func (c *cluster) unexpectedExits() map[string]int {
	c.tailLogs()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.exits {
		out[k] = v
	}
	return out
}

// uaSockets lists the UA sockets of a host, by unit instance.
func (c *cluster) uaSocket(host, inst string) string {
	return filepath.Join(c.dir, host, "run", "kaiwa", "ua-"+inst+".sock")
}

var uaInstances = []string{"v1-0", "v2-0"}

// unixClient is an HTTP client that reaches the server on a unix socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// get asks the server on a unix socket for path; status 0 when it does
// not answer.
func unixGet(sock, path string) (int, string) {
	resp, err := unixClient(sock).Get("http://localhost" + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one counter or gauge of a UA's /metrics, summed over its
// labels (by tenant, say); 0 when absent (a labelled counter appears with
// its first count).
func metric(sock, name string) float64 {
	_, body := unixGet(sock, "/metrics")
	ms := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(body, -1)
	var sum float64
	for _, m := range ms {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
}

// sessions returns the open sessions of each UA host.
func (c *cluster) sessions() map[string]int {
	out := map[string]int{}
	for _, h := range []string{"ua-1", "ua-2"} {
		for _, in := range uaInstances {
			if n := metric(c.uaSocket(h, in), "kaiwa_ua_sessions"); n > 0 {
				out[h] += int(n)
			}
		}
	}
	return out
}

// streamLeader returns the NATS server leading the message stream.
func (c *cluster) streamLeader(t testing.TB) string {
	t.Helper()
	nc, err := nats.Connect(c.addr["NATS_URL"], nats.Timeout(2*time.Second))
	if err != nil {
		return ""
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "KAIWA_MSGS")
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// waitFor polls cond every 100 ms until it holds, and returns when it
// first did; it fails t after within.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) time.Time {
	t.Helper()
	testenv.Eventually(t, what, within, cond)
	return time.Now()
}

// recovery describes how long a fault held things up: the longest gap
// between acknowledgements around it, and when the last member that
// reconnected was ready again.
func recovery(r *round, o outage) string {
	var acks []time.Time
	for _, s := range r.ledger.snapshot() {
		if s.outcome == acked {
			acks = append(acks, s.acked)
		}
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		if acks[i].After(o.began) && acks[i-1].Before(o.back.Add(5*time.Second)) {
			gap = max(gap, acks[i].Sub(acks[i-1]))
		}
	}
	var back time.Duration
	moved := 0
	for _, m := range r.members {
		m.mu.Lock()
		for _, sp := range m.spans[1:] {
			if sp.ready.After(o.began) {
				back = max(back, sp.ready.Sub(o.began))
				moved++
				break
			}
		}
		m.mu.Unlock()
	}
	out := fmt.Sprintf("longest wait between acknowledgements %.1fs", gap.Seconds())
	if moved > 0 {
		out += fmt.Sprintf("; %d members reconnected, the last ready %.1fs after the fault began", moved, back.Seconds())
	}
	return out
}

// clusterFault is a fault of the cluster suite: run drives it and
// returns the outage, and a line of its own figures.
type clusterFault struct {
	name, tag string
	run       func(t *testing.T, c *cluster, r *round) (outage, string)
	// tune, when set, changes the round's clients for this fault.
	tune func(*roundConfig)
}

var clusterFaults = []clusterFault{
	{name: "steady-load", tag: "c0", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// No fault: what each host's processes cost per message while the
		// members chat at about 300 messages a second.
		time.Sleep(2 * time.Second)
		from, cpu0 := time.Now(), c.cpu(t)
		time.Sleep(15 * time.Second)
		to, cpu1 := time.Now(), c.cpu(t)
		return outage{began: to, back: to}, c.costs(r, from, to, cpu0, cpu1)
	}, tune: func(c *roundConfig) {
		c.SayEvery = 120 * time.Millisecond
		// A heavier load for measuring, e.g. KAIWA_CLUSTER_SAY_EVERY=30ms
		// (each member's mean interval between messages).
		if d, err := time.ParseDuration(os.Getenv("KAIWA_CLUSTER_SAY_EVERY")); err == nil {
			c.SayEvery = d
		}
	}},
	{name: "nats-leader-kill", tag: "c1", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// The node leading the message stream is killed with SIGKILL and
		// started again on its store 10 s later; the other two elect a
		// new leader, and every process that was connected to it
		// reconnects to another node.
		leader := c.streamLeader(t)
		if leader == "" {
			t.Fatal("no leader of KAIWA_MSGS")
		}
		at := time.Now()
		c.run(t, "kill", leader, "kaiwa-nats.service")
		var next string
		elected := waitFor(t, "a new leader of KAIWA_MSGS", 30*time.Second, func() bool {
			next = c.streamLeader(t)
			return next != "" && next != leader
		})
		time.Sleep(time.Until(at.Add(10 * time.Second)))
		c.run(t, "start", leader, "kaiwa-nats.service")
		back := waitFor(t, leader+" current again", 60*time.Second, func() bool {
			resp, err := http.Get("http://" + c.addr["CORE_"+strings.ToUpper(strings.ReplaceAll(leader, "-", "_"))] + ":8222/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		return outage{began: at, back: back, within: 10 * time.Second},
			fmt.Sprintf("killed %s (stream leader); %s elected %.1fs later; %s back and current %.1fs after the kill",
				leader, next, elected.Sub(at).Seconds(), leader, back.Sub(at).Seconds())
	}},
	{name: "ua-host-cut-15s", tag: "c2", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// ua-1 loses the cluster network (NATS, the API tier) for 15 s;
		// the front still reaches it. Its UAs fence themselves: their
		// clients are sent to ua-2, /readyz fails, upgrades are refused.
		before := c.sessions()
		if before["ua-1"] == 0 || before["ua-2"] == 0 {
			t.Fatalf("members are not on both UA hosts: %v", before)
		}
		at := time.Now()
		c.run(t, "cut", "ua-1")
		fenced := waitFor(t, "ua-1's UAs fail /readyz", 20*time.Second, func() bool {
			for _, in := range uaInstances {
				if st, _ := unixGet(c.uaSocket("ua-1", in), "/readyz"); st != http.StatusServiceUnavailable {
					return false
				}
			}
			return true
		})
		moved := waitFor(t, "every member on ua-2", 20*time.Second, func() bool {
			n := c.sessions()
			return n["ua-1"] == 0 && n["ua-2"] >= len(r.members)
		})
		// While cut off, ua-1 serves nothing: no session, no upgrade.
		time.Sleep(time.Until(at.Add(14 * time.Second)))
		n := c.sessions()
		for _, in := range uaInstances {
			st, body := unixGet(c.uaSocket("ua-1", in), "/readyz")
			v := in[:2]
			conn, err := client.Dial(t.Context(), "ws://localhost/"+v+"/ws", client.Options{
				HTTPClient: unixClient(c.uaSocket("ua-1", in)), Token: r.members[0].token})
			if err == nil {
				conn.Close()
				t.Errorf("ua-1 %s accepted a session while cut off", in)
			}
			if st != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
				t.Errorf("ua-1 %s /readyz while cut off: %d %s", in, st, body)
			}
		}
		if n["ua-1"] != 0 {
			t.Errorf("ua-1 holds %d sessions while cut off", n["ua-1"])
		}
		time.Sleep(time.Until(at.Add(15 * time.Second)))
		c.run(t, "restore", "ua-1")
		back := waitFor(t, "ua-1 ready again", 30*time.Second, func() bool {
			for _, in := range uaInstances {
				if st, _ := unixGet(c.uaSocket("ua-1", in), "/readyz"); st != http.StatusOK {
					return false
				}
			}
			return true
		})
		return outage{began: at, back: at, within: 15 * time.Second, maxDown: 8 * time.Second},
			fmt.Sprintf("sessions before %v; ua-1 fenced (/readyz 503) %.1fs after the cut; every member on ua-2 %.1fs after; restored at 15s, ready again %.1fs later",
				before, fenced.Sub(at).Seconds(), moved.Sub(at).Seconds(), back.Sub(at.Add(15*time.Second)).Seconds())
	}, tune: func(c *roundConfig) {
		// v2 members only: what a cut-off UA cannot hear before it fences
		// (up to --fence-after) never reaches its v1 sessions, which
		// have no resume (docs/architecture.md, failure modes); a v2
		// member resumes it on the other host.
		c.V2, c.V1 = 40, 0
	}},
	{name: "api-host-kill", tag: "c3", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// Every process of api-1 (both APIs, a log writer, nginx) is
		// killed and left down: api-2 answers the directory and the
		// front's API calls, and its log writer takes over what api-1's
		// held.
		at := time.Now()
		c.run(t, "kill", "api-1")
		return outage{began: at, back: at, within: 10 * time.Second}, "killed every process of api-1, left down"
	}},
	{name: "ua-host-kill", tag: "c4", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// Every process of ua-2 (its UAs and nginx) is killed and left
		// down: its clients reconnect through the front to ua-1.
		before := c.sessions()
		if before["ua-2"] == 0 {
			t.Fatalf("no member on ua-2: %v", before)
		}
		at := time.Now()
		c.run(t, "kill", "ua-2")
		moved := waitFor(t, "every member on ua-1", 30*time.Second, func() bool {
			return c.sessions()["ua-1"] >= len(r.members)
		})
		return outage{began: at, back: at, within: 10 * time.Second, maxDown: 8 * time.Second},
			fmt.Sprintf("sessions before %v; killed every process of ua-2, left down; every member on ua-1 %.1fs later", before, moved.Sub(at).Seconds())
	}},
	{name: "mysql-stop-20s", tag: "c5", run: func(t *testing.T, c *cluster, r *round) (outage, string) {
		// The primary is stopped (SIGTERM) and started again 20 s later;
		// the log waits in the stream, log reads go on from the replica.
		at := time.Now()
		c.run(t, "stop", "mysql-primary", "mariadb.service")
		stopped := time.Now()
		time.Sleep(time.Until(at.Add(20 * time.Second)))
		c.run(t, "start", "mysql-primary", "mariadb.service")
		back := waitFor(t, "the primary answers", 60*time.Second, func() bool {
			return c.s.pingDB(context.Background()) == nil
		})
		return outage{began: at, back: back, within: 10 * time.Second},
			fmt.Sprintf("primary stopped in %.1fs, started again at 20s, answering %.1fs after the stop", stopped.Sub(at).Seconds(), back.Sub(at).Seconds())
	}},
}

// TestCluster builds the cluster (scripts/cluster.sh up), shows that a
// channel spread over both UA hosts costs one delivery from NATS per UA
// process, then drives each failover while v2 and v1 members chat through
// the front, checking the fault suite's rules after each.
func TestCluster(t *testing.T) {
	if os.Getenv(clusterEnv) == "" {
		t.Skip("the cluster suite runs with make test-cluster (" + clusterEnv + "=1)")
	}
	c := startCluster(t)
	var report []string
	t.Run("fanout-per-process", func(t *testing.T) {
		report = append(report, "fanout-per-process: "+c.fanout(t))
	})
	only := os.Getenv("KAIWA_FAULTS_ONLY") // a comma-separated list of fault names
	for _, f := range clusterFaults {
		if only != "" && !strings.Contains(","+only+",", ","+f.name+",") {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			cfg := defaultRoundConfig()
			cfg.V2, cfg.V1 = 32, 8
			cfg.CatchUp = 30 * time.Second
			if f.tune != nil {
				f.tune(&cfg)
			}
			r := newRound(t, c.s, f.tag, cfg)
			r.startTraffic()
			time.Sleep(cfg.Warmup)
			o, what := f.run(t, c, r)
			time.Sleep(time.Until(o.back.Add(cfg.Settle)))
			fig := r.check(t, o)
			rec := recovery(r, o)
			if !fig.logDone.IsZero() {
				rec += fmt.Sprintf("; the log complete %.1fs after the fault began", fig.logDone.Sub(o.began).Seconds())
			}
			line := fig.line(f.name)
			fmt.Printf("CLUSTER %s: %s\n  recovery: %s\n  %s\n", f.name, what, rec, line)
			report = append(report, f.name+": "+what+"\n    recovery: "+rec+"\n    "+line)
			if fig.failed() {
				t.Errorf("%s breaks the rules %v:\n%s\n  %s", f.name, fig.kinds, line, strings.Join(fig.problems, "\n  "))
			}
		})
	}
	fmt.Println("\ncluster suite figures:")
	for _, l := range report {
		fmt.Println("  " + l)
	}
}

// fanout connects members of one channel to each of the four UA
// processes (two per host), sends messages to it, and checks from the
// UAs' counters that each UA process received every message from NATS
// once, however many members it has, and delivered it to each of them.
func (c *cluster) fanout(t *testing.T) string {
	const perUA, n = 4, 50
	api := c.s.apiClient(10 * time.Second)
	ch := "fan.room"
	api.must(t, 201, "v1", "PUT", "/channels/"+ch, map[string]any{"kind": "closed"})
	type ua struct{ host, inst, sock string }
	var uas []ua
	for _, h := range []string{"ua-1", "ua-2"} {
		for _, in := range uaInstances {
			uas = append(uas, ua{h, in, c.uaSocket(h, in)})
		}
	}
	var conns []*client.Conn
	for i, u := range uas {
		for j := range perUA {
			user := fmt.Sprintf("fan-%d-%d", i, j)
			api.must(t, 201, "v1", "PUT", "/channels/"+ch+"/members/"+user, nil)
			tok := api.must(t, 201, "v1", "POST", "/tokens", map[string]any{"user": user, "ttl_seconds": 600})["token"].(string)
			conn, err := client.Dial(t.Context(), "ws://localhost/"+u.inst[:2]+"/ws", client.Options{
				HTTPClient: unixClient(u.sock), Token: tok, EventBuffer: 4 * n})
			if err != nil {
				t.Fatalf("dial %s %s: %v", u.host, u.inst, err)
			}
			t.Cleanup(func() { conn.Close() })
			conns = append(conns, conn)
		}
	}
	busBefore, delBefore := make([]float64, len(uas)), make([]float64, len(uas))
	for i, u := range uas {
		busBefore[i] = metric(u.sock, "kaiwa_ua_bus_messages_total")
		delBefore[i] = metric(u.sock, "kaiwa_ua_deliveries_total")
	}
	for i := range n {
		api.must(t, 201, "v2", "POST", "/channels/"+ch+"/messages", map[string]any{"text": fmt.Sprintf("m%d", i)})
	}
	got := make([]int, len(conns))
	deadline := time.After(20 * time.Second)
	for i, conn := range conns {
		for got[i] < n {
			select {
			case ev, ok := <-conn.Events():
				if !ok {
					t.Fatalf("member %d: connection ended", i)
				}
				if ev.Op == "msg" {
					got[i]++
				}
			case <-deadline:
				t.Fatalf("member %d received %d of %d", i, got[i], n)
			}
		}
	}
	var parts []string
	for i, u := range uas {
		bus := metric(u.sock, "kaiwa_ua_bus_messages_total") - busBefore[i]
		del := metric(u.sock, "kaiwa_ua_deliveries_total") - delBefore[i]
		if bus != n || del != n*perUA {
			t.Errorf("%s %s: %v messages from NATS and %v deliveries, want %d and %d", u.host, u.inst, bus, del, n, n*perUA)
		}
		parts = append(parts, fmt.Sprintf("%s/%s %v from NATS, %v delivered", u.host, u.inst, bus, del))
	}
	line := fmt.Sprintf("%d messages to a channel of %d members, %d on each of 4 UA processes on 2 hosts: %s",
		n, len(conns), perUA, strings.Join(parts, "; "))
	fmt.Println("CLUSTER fanout-per-process: " + line)
	return line
}

// cpu returns the CPU time each host's processes have used, by host and
// program ("ua-1 kaiwa", "ua-1 nginx", "front nginx"), from /proc.
func (c *cluster) cpu(t testing.TB) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	add := func(host string, pid int) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// pid (comm) state ppid ... utime stime: fields 14 and 15.
		open, close := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || close < open {
			return
		}
		comm := string(data[open+1 : close])
		f := strings.Fields(string(data[close+2:]))
		if len(f) < 13 || comm == "bash" || comm == "sh" {
			return // the runners
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[host+" "+comm] += time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
	}
	for _, h := range []string{"nats-1", "nats-2", "nats-3", "mysql-primary", "mysql-replica", "api-1", "api-2", "ua-1", "ua-2"} {
		pids, _ := exec.Command("ip", "netns", "pids", "kwt-"+h).Output()
		for _, p := range strings.Fields(string(pids)) {
			pid, _ := strconv.Atoi(p)
			add(h, pid)
		}
	}
	// The front's nginx: its master and workers.
	if b, err := os.ReadFile(filepath.Join(c.dir, "front", "pids", "kaiwa-front.service.pid")); err == nil {
		master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		add("front", master)
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
			if len(f) > 1 && f[1] == strconv.Itoa(master) {
				pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
				add("front", pid)
			}
		}
	}
	return out
}

// costs describes what the round's traffic between from and to cost:
// messages and deliveries a second, and each host's processes' CPU, in
// cores and per message.
func (c *cluster) costs(r *round, from, to time.Time, cpu0, cpu1 map[string]time.Duration) string {
	window := to.Sub(from)
	msgs := 0
	for _, s := range r.ledger.snapshot() {
		if s.outcome == acked && s.acked.After(from) && s.acked.Before(to) {
			msgs++
		}
	}
	deliveries := 0
	for _, m := range r.members {
		m.mu.Lock()
		for _, l := range m.got {
			for _, x := range l {
				if x.at.After(from) && x.at.Before(to) {
					deliveries++
				}
			}
		}
		m.mu.Unlock()
	}
	var keys []string
	for k := range cpu1 {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := []string{fmt.Sprintf("%.0f messages/s acknowledged, %.0f deliveries/s, over %.0fs", float64(msgs)/window.Seconds(), float64(deliveries)/window.Seconds(), window.Seconds())}
	var total time.Duration
	for _, k := range keys {
		d := cpu1[k] - cpu0[k]
		total += d
		if msgs > 0 {
			parts = append(parts, fmt.Sprintf("%s %.3f cores, %.0f µs/msg", k, d.Seconds()/window.Seconds(), float64(d.Microseconds())/float64(msgs)))
		}
	}
	parts = append(parts, fmt.Sprintf("all hosts %.2f cores", total.Seconds()/window.Seconds()))
	return strings.Join(parts, "; ")
}
