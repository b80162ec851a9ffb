package bench

import (
	"strings"
	"testing"
)

func TestWriteComparison(t *testing.T) {
	row := func(scenario, label string, rate float64, procs map[string]ProcResult) Result {
		return Result{Scenario: scenario, Label: label, Server: "ua", Rate: rate, Conns: 5000, Time: "2026-12-07T15:18:00Z", Reconnected: 10000, Procs: procs}
	}
	prev := []Result{
		row(ScenarioFanout, "kaiwa", 400, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 10}, "nats": {CPUPerDeliveryUS: 3}}),
		row(ScenarioFanout, "kaiwa", 580, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 10}}),
		row(ScenarioIdle, "kaiwa", 0, map[string]ProcResult{"ua": {ConnectCPUPerConnUS: 500}, "api": {ConnectCPUPerConnUS: 300}}),
		row(ScenarioStorm, "kaiwa", 0, map[string]ProcResult{"ua": {CPUS: 6}, "nginx": {CPUS: 6}}),
		row(ScenarioRoom, "gone", 10, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 9}}),
	}
	cur := []Result{
		row(ScenarioFanout, "kaiwa", 400, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 12}, "nats": {CPUPerDeliveryUS: 3}}), // 13 → 15: +15 %
		row(ScenarioFanout, "kaiwa", 580, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 10.5}}),                              // +5 %
		row(ScenarioIdle, "kaiwa", 0, map[string]ProcResult{"ua": {ConnectCPUPerConnUS: 400}, "api": {ConnectCPUPerConnUS: 200}}),
		row(ScenarioStorm, "kaiwa", 0, map[string]ProcResult{"ua": {CPUS: 7}, "nginx": {CPUS: 7}}), // 1,200 → 1,400 µs: +17 %
		row(ScenarioRoom, "new", 10, map[string]ProcResult{"ua": {CPUPerDeliveryUS: 9}}),
	}
	var b strings.Builder
	WriteComparison(&b, prev, cur)
	out := b.String()
	containsAll(t, "comparison lacks", out,
		"(2026-12-07T15:18:00Z)",
		"| fanout | kaiwa, 400 msg/s | per delivery | 13.0 µs | 15.0 µs | +15 % | **regression** |",
		"| fanout | kaiwa, 580 msg/s | per delivery | 10.0 µs | 10.5 µs | +5 % |  |",
		"| idle | kaiwa | per connection | 800.0 µs | 600.0 µs | -25 % |  |",
		"| storm | kaiwa | per reconnect | 1200.0 µs | 1400.0 µs | +17 % | **regression** |",
		"2 row(s) rose by more than 10 %",
	)
	if strings.Contains(out, "gone") || strings.Contains(out, "new") {
		t.Errorf("a row of one run alone was compared:\n%s", out)
	}

	b.Reset()
	WriteComparison(&b, nil, cur)
	if !strings.Contains(b.String(), "No previous run") {
		t.Errorf("without a previous run: %q", b.String())
	}
}

func TestReadResults(t *testing.T) {
	rs, err := ReadResults(strings.NewReader("a summary line\n{\"scenario\":\"idle\",\"label\":\"kaiwa\"}\n{not json}\n{\"label\":\"no scenario\"}\n"))
	if err != nil || len(rs) != 1 || rs[0].Label != "kaiwa" {
		t.Fatalf("ReadResults = %+v, %v; want the one result line", rs, err)
	}
}
