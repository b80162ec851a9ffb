package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/internal/bench/bare"
)

// workerEnv makes the test binary a bench worker process (see TestMain).
const workerEnv = "KAIWA_BENCH_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startBare serves a bare reference server for the test and returns its
// WebSocket URL.
func startBare(t testing.TB) (string, *bare.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := bare.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bare server: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/v1/ws", s
}

// quick returns a small, fast configuration of a scenario.
func quick(scenario, url string) Config {
	return Config{
		Scenario: scenario, URLs: []string{url}, Conns: 40, Channels: 4, Rate: 80,
		Duration: 1500 * time.Millisecond, Settle: 100 * time.Millisecond,
		Drain: 5 * time.Second, Quiet: 100 * time.Millisecond,
		Deadline: time.Minute, PIDs: []NamedPID{{Name: "self", PID: os.Getpid()}},
	}
}

// checkDelivery asserts what every message scenario must show: everything
// sent was acknowledged and delivered exactly once to every receiver.
func checkDelivery(t *testing.T, r *Result) {
	t.Helper()
	if r.Connected != r.Conns || r.ConnectFailed != 0 {
		t.Fatalf("%d of %d connected, %d failed: %v", r.Connected, r.Conns, r.ConnectFailed, r.ConnectErrors)
	}
	if r.Sent == 0 || r.Acked != r.Sent || len(r.PublishErrors) > 0 {
		t.Fatalf("sent %d, acked %d, errors %v", r.Sent, r.Acked, r.PublishErrors)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.Foreign != 0 || r.Unacked != 0 || r.Dropped != 0 {
		t.Fatalf("lost %d, duplicated %d, foreign %d, unacked %d, dropped %d %v",
			r.Lost, r.Duplicated, r.Foreign, r.Unacked, r.Dropped, r.DropReasons)
	}
	if r.Delivered != r.Expected || r.Expected == 0 {
		t.Fatalf("delivered %d, expected %d", r.Delivered, r.Expected)
	}
	l := r.Latency
	if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Fatalf("latency percentiles out of order: %+v", l)
	}
	if l.Max > 5000 {
		t.Fatalf("a delivery took %.0f ms on loopback", l.Max)
	}
	if r.DeliveriesPerS <= 0 || r.ConnectRate <= 0 || r.ConnectP50MS <= 0 {
		t.Fatalf("rates: %v deliveries/s, %v connections/s, connect p50 %v", r.DeliveriesPerS, r.ConnectRate, r.ConnectP50MS)
	}
}

func TestFanoutAgainstBare(t *testing.T) {
	url, _ := startBare(t)
	var progress bytes.Buffer
	cfg := quick(ScenarioFanout, url)
	cfg.Progress = &progress
	r := runOne(t, cfg)
	checkDelivery(t, r)
	// 40 clients in 4 channels of 10: every message reaches 10.
	if r.Expected != r.Acked*10 {
		t.Fatalf("expected %d deliveries of %d messages, want 10 each", r.Expected, r.Acked)
	}
	// 80 msg/s over 1.5 s, one publisher per channel at 20 msg/s... over
	// the 8 msg/s default, so three per channel.
	if r.Publishers != 12 {
		t.Fatalf("%d publishers, want 12", r.Publishers)
	}
	if r.Sent < 100 || r.Sent > 135 {
		t.Fatalf("sent %d messages at 80/s in 1.5 s", r.Sent)
	}
	self, ok := r.Procs["self"]
	if !ok || self.RSSConn <= 0 || self.CPUS <= 0 || self.CPUPerDeliveryUS <= 0 {
		t.Fatalf("self process figures: %+v", r.Procs)
	}
	if r.LoadTool.CPUS <= 0 || r.LoadTool.FileLimit == 0 {
		t.Fatalf("load tool figures: %+v", r.LoadTool)
	}
	// The one JSON line and the summary.
	line, err := json.Marshal(r)
	if err != nil || bytes.ContainsRune(line, '\n') {
		t.Fatalf("JSON line: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(line, &back); err != nil || back["lost"] != 0.0 || back["scenario"] != "fanout" {
		t.Fatalf("JSON line %s", line)
	}
	var sum bytes.Buffer
	r.WriteSummary(&sum)
	containsAll(t, "summary lacks", sum.String(), "fanout against", "lost 0, duplicated 0", "p99", "self")
	if !strings.Contains(progress.String(), "delivered") {
		t.Errorf("no progress line in:\n%s", progress.String())
	}
}

func TestRoomAgainstBareInWorkerProcesses(t *testing.T) {
	url, _ := startBare(t)
	t.Setenv(workerEnv, "1")
	cfg := quick(ScenarioRoom, url)
	cfg.Conns, cfg.Rate = 30, 20
	cfg.Processes = 2
	cfg.StartWorker = ExecWorker(os.Stderr, os.Args[0], "-test.run=^$")
	r := runOne(t, cfg)
	checkDelivery(t, r)
	if r.Workers != 2 || r.Channels != 1 || r.Expected != r.Acked*30 {
		t.Fatalf("workers %d, channels %d, expected %d for %d messages", r.Workers, r.Channels, r.Expected, r.Acked)
	}
}

func TestIdleAndStormAgainstBare(t *testing.T) {
	url, srv := startBare(t)
	cfg := quick(ScenarioIdle, url)
	cfg.Duration = 300 * time.Millisecond
	r := runOne(t, cfg)
	if r.Connected != 40 || r.ConnectRate <= 0 || r.Procs["self"].RSSConn == 0 || r.Sent != 0 || r.WindowS < 0.3 {
		t.Fatalf("idle: %+v", r)
	}
	cfg = quick(ScenarioStorm, url)
	cfg.Rate = 0 // a plain storm: nobody publishes
	cfg.Duration = 10 * time.Second
	r = runOne(t, cfg)
	if r.Reconnected != 40 || r.NotBack != 0 || r.StormS <= 0 || r.StormS > 10 || r.Dropped != 0 {
		t.Fatalf("storm: %d back, %d not, in %v s, dropped %d", r.Reconnected, r.NotBack, r.StormS, r.Dropped)
	}
	// Every client the storm dropped is gone from the server, every new
	// one is there; Run closed them all at its end.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left after the run", srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runOne runs a one-window configuration.
func runOne(t *testing.T, cfg Config) *Result {
	t.Helper()
	rs, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results, want one window", len(rs))
	}
	return rs[0]
}

func TestSweepAgainstBareInWorkerProcesses(t *testing.T) {
	url, _ := startBare(t)
	t.Setenv(workerEnv, "1")
	cfg := quick(ScenarioFanout, url)
	cfg.Duration = time.Second
	cfg.Rates = []float64{40, 120, 80}
	cfg.Processes = 2
	cfg.StartWorker = ExecWorker(os.Stderr, os.Args[0], "-test.run=^$")
	rs, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d windows, want 3", len(rs))
	}
	for i, r := range rs {
		checkDelivery(t, r)
		if r.Rate != cfg.Rates[i] || r.Expected != 10*r.Acked {
			t.Fatalf("window %d: rate %v, %d expected for %d messages", i, r.Rate, r.Expected, r.Acked)
		}
		// Each window sends its own rate's worth: about rate × 1 s.
		if r.Sent < uint64(cfg.Rates[i]*0.8) || r.Sent > uint64(cfg.Rates[i]*1.2)+12 {
			t.Fatalf("window %d sent %d at %v msg/s", i, r.Sent, r.Rate)
		}
	}
	// A sweep stops after the first window over its latency bound.
	cfg.SweepMaxP99 = time.Nanosecond
	rs, err = Run(context.Background(), cfg)
	if err != nil || len(rs) != 1 {
		t.Fatalf("bounded sweep: %d windows, %v", len(rs), err)
	}
}

func TestRefusesRemoteTargets(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"ws://10.0.0.1:80/v1/ws", "ws://[2001:db8::1]/v1/ws", "wss://8.8.8.8/v1/ws"} {
		if err := CheckLoopback(ctx, u); err == nil {
			t.Errorf("%s accepted", u)
		}
		cfg := quick(ScenarioIdle, u)
		if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Run against %s: %v", u, err)
		}
	}
	// The API that publishers post to too.
	cfg := quick(ScenarioRoom, "ws://127.0.0.1:1/v1/ws")
	cfg.PublishVia, cfg.API = PublishAPI, APITarget{URL: "http://10.0.0.1/v1/api", Key: "k"}
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Run publishing to %s: %v", cfg.API.URL, err)
	}
	for _, u := range []string{"ws://127.0.0.1:1/v1/ws", "ws://[::1]:1/v1/ws", "ws://localhost:1/v1/ws", "ws://127.9.9.9/v1/ws"} {
		if err := CheckLoopback(ctx, u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for _, c := range []Config{
		{Scenario: "bogus", Conns: 1},
		{Scenario: ScenarioFanout, Conns: 10, Channels: 2},         // no rate
		{Scenario: ScenarioDM, Conns: 3, Rate: 1},                  // odd
		{Scenario: ScenarioFanout, Conns: 2, Channels: 3, Rate: 1}, // empty channels
		{Scenario: ScenarioFanout, Conns: 2, Channels: 1, Rate: 1, Payload: 5000},
		// Publishing through the API: fanout and room only, with a URL
		// and a key, and no other way than ws or api.
		{Scenario: ScenarioDM, Conns: 2, Rate: 1, PublishVia: PublishAPI, API: APITarget{URL: "http://127.0.0.1:1/v1/api", Key: "k"}},
		{Scenario: ScenarioStorm, Conns: 2, Rate: 1, PublishVia: PublishAPI, API: APITarget{URL: "http://127.0.0.1:1/v1/api", Key: "k"}},
		{Scenario: ScenarioFanout, Conns: 2, Channels: 1, Rate: 1, PublishVia: PublishAPI, API: APITarget{URL: "http://127.0.0.1:1/v1/api"}},
		{Scenario: ScenarioFanout, Conns: 2, Channels: 1, Rate: 1, PublishVia: PublishAPI, API: APITarget{Key: "k"}},
		{Scenario: ScenarioFanout, Conns: 2, Channels: 1, Rate: 1, PublishVia: "nats"},
	} {
		c.URLs = []string{"ws://127.0.0.1:1/v1/ws"}
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestPlanLayout(t *testing.T) {
	c := Config{Scenario: ScenarioFanout, Conns: 10, Channels: 2, Rate: 40, Duration: 2 * time.Second}
	c.setDefaults()
	l := plan(&c, "b1")
	// 20 msg/s per channel over publishers of at most 8 msg/s: three each,
	// at 6.67 msg/s; messages numbered up to ceil(6.67*2)+1.
	if len(l.pubConn) != 6 || l.seqs != 15 {
		t.Fatalf("%d publishers, %d seqs", len(l.pubConn), l.seqs)
	}
	for p, conn := range l.pubConn {
		if l.group[conn] != l.pubGroup[p] {
			t.Fatalf("publisher %d (client %d) is not in its group", p, conn)
		}
	}
	plans := splitPlan(&c, l, make([]string, 10), 3, nil, time.Now())
	seen := map[int]bool{}
	pubs := 0
	for _, p := range plans {
		for _, pc := range p.Conns {
			if seen[pc.Index] {
				t.Fatalf("client %d in two plans", pc.Index)
			}
			seen[pc.Index] = true
		}
		for _, pp := range p.Pubs {
			if p.Conns[pp.Conn].Index != l.pubConn[pp.ID] {
				t.Fatalf("publisher %d points at the wrong client", pp.ID)
			}
			pubs++
		}
	}
	if len(seen) != 10 || pubs != 6 {
		t.Fatalf("%d clients and %d publishers planned", len(seen), pubs)
	}

	d := Config{Scenario: ScenarioDM, Conns: 4, Rate: 8, Duration: time.Second}
	d.setDefaults()
	l = plan(&d, "b2")
	if len(l.pubConn) != 4 || l.pubTo[0] != l.users[1] || l.pubTo[3] != l.users[2] || l.pubGroup[2] != 1 {
		t.Fatalf("dm layout %+v", l)
	}
}
