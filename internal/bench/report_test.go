package bench

import (
	"bytes"
	"strings"
	"testing"
)

// containsAll fails t for each of wants that out does not contain; what
// names out ("tables lack").
func containsAll(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s %q:\n%s", what, want, out)
		}
	}
}

func TestWriteTables(t *testing.T) {
	results := []Result{
		{Scenario: ScenarioFanout, Label: "ua", Server: "ua", Connected: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000,
			Latency: Lat{P50: 1.5, P99: 20, P999: 30, Max: 41}, Procs: map[string]ProcResult{
				"ua": {CPUPerDeliveryUS: 12.5, Cores: 0.5}, "nats": {CPUPerDeliveryUS: 1.25}}},
		{Scenario: ScenarioIdle, Label: "bare", Server: "bare", Conns: 100, Connected: 100, ConnectRate: 5000,
			Procs: map[string]ProcResult{"bare": {RSSPerConn: 12 << 10, CoresPer10k: 0.01}}},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", Connected: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000,
			Procs: map[string]ProcResult{"bare": {CPUPerDeliveryUS: 9}}},
		{Scenario: ScenarioStorm, Server: "ua", Connected: 10, StormS: 1.25},
		{Scenario: ScenarioFanout, Label: "ua", Server: "ua", DeliveriesPerS: 58000, Latency: Lat{P99: 99}},
		{Scenario: ScenarioFanout, Label: "ua", Server: "ua", DeliveriesPerS: 70000, Latency: Lat{P99: 101}},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", DeliveriesPerS: 80000, Latency: Lat{P99: 50}},
		{Scenario: ScenarioFanout, Label: "log", Server: "ua", Acked: 10, Log: &LogResult{Stored: 10, LagS: 0.25}},
		{Scenario: ScenarioDM, Label: "busy", Server: "ua", OtherCores: 0.5},
		{Scenario: ScenarioRoom, Server: "ua", Publish: PublishAPI, Connected: 2000, Channels: 1, Rate: 10},
		{Scenario: ScenarioRoom, Label: "ua", Server: "ua", Publish: PublishWS, Connected: 2000, Channels: 1, Rate: 10, OtherCores: 0.5},
		{Scenario: ScenarioRoom, Label: "ua2", Server: "ua", Publish: PublishAPI, OtherCores: 0.5},
	}
	var b bytes.Buffer
	WriteTables(&b, results)
	out := b.String()
	containsAll(t, "tables lack", out,
		"### fanout\n", "### idle\n", "### storm\n",
		"| ua | 5000 | 50 | 400 | 40000 | 1.5 / 20.0 / 30.0 / 41.0 | 0 | 0 | 12.5 µs | 13.8 µs | 0.50 | nats 1.2 µs |",
		"| bare | 5000 | 50 | 400 | 40000 |",
		"| bare | 100 of 100 | 5000 |", "12.0 KiB",
		"| ua | 10 | 0 | 0 | 1.25 s | 0 / 0 | 0 | 0 | 0 (0) |",
		"Highest rate with p99 ≤ 100 ms and nothing lost: ua 58000 deliveries/s; bare 80000 deliveries/s or more (the highest rate tried).",
		"Message log (log): 10 of 10 messages stored in MySQL, 0 missing, complete 0.25 s after",
		"| busy ⚠ |", "⚠ Other work used more than 0.15 cores",
		"| ua (API publishers) | 2000 | 1 | 10 |", "| ua ⚠ | 2000 | 1 | 10 |", "| ua2 (API publishers) ⚠ |",
	)
	if strings.Index(out, "### fanout") > strings.Index(out, "### idle") {
		t.Error("scenarios out of first-seen order")
	}
}

func TestReplaceSection(t *testing.T) {
	doc := []byte("# T\n\n<!-- bench:results -->\nold\n<!-- /bench:results -->\n\n## After\n")
	got, err := ReplaceSection(doc, "results", "new\ntable")
	if err != nil {
		t.Fatal(err)
	}
	want := "# T\n\n<!-- bench:results -->\nnew\ntable\n<!-- /bench:results -->\n\n## After\n"
	if string(got) != want {
		t.Fatalf("got %q", got)
	}
	if _, err := ReplaceSection(doc, "machine", "x"); err == nil {
		t.Fatal("a missing section was replaced")
	}
}

func TestWriteTargets(t *testing.T) {
	procs := func(ua, nginx ProcResult) map[string]ProcResult {
		return map[string]ProcResult{"ua": ua, "nginx": nginx}
	}
	withNginx := func(p ProcResult) map[string]ProcResult {
		return map[string]ProcResult{"bare": p, "nginx": {PIDs: []int{1}, RSSPerConn: 40 << 10, CPUPerDeliveryUS: 10}}
	}
	results := []Result{
		{Scenario: ScenarioIdle, Label: "kaiwa", Server: "ua", Conns: 10000, Connected: 10000, ConnectRate: 1200,
			Procs: procs(ProcResult{RSSPerConn: 20 << 10}, ProcResult{PIDs: []int{1}, RSSPerConn: 40 << 10})},
		{Scenario: ScenarioIdle, Label: "bare", Server: "bare", Conns: 10000, Connected: 10000, ConnectRate: 1600,
			Procs: withNginx(ProcResult{RSSPerConn: 20 << 10})},
		{Scenario: ScenarioFanout, Label: "kaiwa", Server: "ua", Conns: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000,
			Delivered: 100, Expected: 100, Latency: Lat{P99: 20}, Procs: procs(ProcResult{CPUPerDeliveryUS: 12}, ProcResult{CPUPerDeliveryUS: 10})},
		{Scenario: ScenarioFanout, Label: "kaiwa", Server: "ua", Conns: 5000, Channels: 50, Rate: 580, DeliveriesPerS: 58000, Latency: Lat{P99: 90}},
		// Through the API: 30 µs against 20 is over 1.15×, and its 120,000/s is not a sweep of the say publishers.
		{Scenario: ScenarioFanout, Label: "kaiwa", Server: "ua", Publish: PublishAPI, Conns: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000,
			Delivered: 100, Expected: 100, Latency: Lat{P99: 20}, Procs: procs(ProcResult{CPUPerDeliveryUS: 20}, ProcResult{CPUPerDeliveryUS: 10})},
		{Scenario: ScenarioFanout, Label: "kaiwa", Server: "ua", Publish: PublishAPI, Conns: 5000, Channels: 50, Rate: 1200, DeliveriesPerS: 120000, Latency: Lat{P99: 20}},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", Conns: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000,
			Latency: Lat{P99: 19}, Procs: withNginx(ProcResult{CPUPerDeliveryUS: 10})},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", Conns: 5000, Channels: 50, Rate: 800, DeliveriesPerS: 80000, Latency: Lat{P99: 60}},
		{Scenario: ScenarioRoom, Label: "kaiwa", Server: "ua", Conns: 2000, Latency: Lat{P99: 45}},
		{Scenario: ScenarioRoom, Label: "bare", Server: "bare", Conns: 2000, Latency: Lat{P99: 30}},
		{Scenario: ScenarioStorm, Label: "kaiwa", Server: "ua", Conns: 10000, StormS: 9},
		// System messages: one by one 3,800 of 5,000/s (8 s, 2.5 s behind);
		// in batches on schedule at 90 µs a message.
		{Scenario: ScenarioFanout, Label: "kaiwa, system", Server: "ua", Publish: PublishAPI, Conns: 50, Channels: 50, Rate: 5000,
			DurationS: 8, LatenessMS: 2500, Acked: 40000, Log: &LogResult{Stored: 40000},
			Procs: map[string]ProcResult{"ua": {CPUPerDeliveryUS: 50}, "api": {CPUPerDeliveryUS: 300}}},
		{Scenario: ScenarioFanout, Label: "kaiwa, system", Server: "ua", Publish: PublishAPI, APIBatch: 50, Conns: 50, Channels: 50, Rate: 5000,
			DurationS: 8, LatenessMS: 10, Acked: 40000, Log: &LogResult{Stored: 40000},
			Procs: map[string]ProcResult{"ua": {CPUPerDeliveryUS: 30}, "api": {CPUPerDeliveryUS: 60}}},
	}
	var b bytes.Buffer
	WriteTargets(&b, results)
	out := b.String()
	containsAll(t, "targets lack", out,
		// 22 µs against 20: within 1.15×; p99 20 ms against 19: within 1.2×.
		"| 40000/s, p99 20.0 ms, 22.0 µs, 0 lost | 40000/s, p99 19.0 ms, 20.0 µs | 1.10 | yes |",
		"published by the game server through the API: everything delivered, p99 ≤ 1.2×, CPU per delivery (all processes) ≤ 1.15× | 40000/s, p99 20.0 ms, 30.0 µs, 0 lost | 40000/s, p99 19.0 ms, 20.0 µs | 1.50 | **no** |",
		"| 58000 deliveries/s | 80000 deliveries/s | 0.72 | **no** |",
		"| p99 45.0 ms, 0 lost | p99 30.0 ms | 1.50 | **no** |",
		"| 60.0 KiB (40.0 KiB nginx) | 60.0 KiB (40.0 KiB nginx) | 1.00 | yes |",
		"| 1200/s | 1600/s | 0.75 | **no** |",
		// The reference connects 10,000 in 6.25 s: 9 s is within 1.5×.
		"| 9.00 s, 0 not back, 0 retries | 6.25 s | 1.44 | yes |",
		"20,000 in one channel on two UA processes, 1 message/s: p99 ≤ 1.2× | not run at this size |",
		"log path",
		"sustains 5,000 messages/s through nginx to one API process, all in MySQL | 3810 msg/s (asked 5000), 40000 of 40000 in MySQL | – | – | **no** |",
		"| 350 µs one by one; 90 µs in batches of up to 50 | – | – | yes |",
	)

	// The one-by-one system row: 170 ms behind at the end of 8 s is 98 %
	// of the rate asked, not sustained; 20 ms behind is.
	var oneByOne Result
	for _, r := range results {
		if r.Label == "kaiwa, system" && r.APIBatch <= 1 {
			oneByOne = r
		}
	}
	for _, c := range []struct {
		lateMS float64
		want   string
	}{{170, "4896 msg/s (asked 5000), 40000 of 40000 in MySQL | – | – | **no** |"}, {20, "4988 msg/s (asked 5000), 40000 of 40000 in MySQL | – | – | yes |"}} {
		one := oneByOne
		one.LatenessMS = c.lateMS
		b.Reset()
		WriteTargets(&b, []Result{one})
		containsAll(t, "system posts on schedule lack", b.String(), c.want)
	}
}

// TestWriteTargetsSweepStoppedAtOnce: a sweep whose first rate already
// passed the p99 bound has one row, and no rate met it.
func TestWriteTargetsSweepStoppedAtOnce(t *testing.T) {
	results := []Result{
		{Scenario: ScenarioFanout, Label: "kaiwa", Server: "ua", Conns: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000, Latency: Lat{P99: 152}},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", Conns: 5000, Channels: 50, Rate: 400, DeliveriesPerS: 40000, Latency: Lat{P99: 42}},
		{Scenario: ScenarioFanout, Label: "bare", Server: "bare", Conns: 5000, Channels: 50, Rate: 580, DeliveriesPerS: 58000, Latency: Lat{P99: 440}},
	}
	var b bytes.Buffer
	WriteTargets(&b, results)
	if want := "nothing lost ≥ 0.9× | none of the rates tried | 40000 deliveries/s | 0.00 | **no** |"; !strings.Contains(b.String(), want) {
		t.Errorf("targets lack %q:\n%s", want, b.String())
	}
}
