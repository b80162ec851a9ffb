package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// ReadResults reads a file of results, one JSON line each; other lines are
// skipped.
func ReadResults(r io.Reader) ([]Result, error) {
	var rs []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil || res.Scenario == "" {
			continue
		}
		rs = append(rs, res)
	}
	return rs, sc.Err()
}

// RegressionLimit is the rise in a row's CPU figure, against the previous
// recorded run, that [WriteComparison] calls a regression.
const RegressionLimit = 0.10

// WriteComparison writes a table comparing each row of a run (cur) with
// the same row of the previous recorded run (prev): the CPU of every
// process on the path per delivery (per connection for idle rows, per
// reconnect for storms), before and after, and a rise of more than
// [RegressionLimit] marked as a regression. Rows are matched by scenario,
// label, publishing and the rate asked; a row of one run alone is left
// out. The reference's rows are compared too, so that a machine that got
// slower shows in them as well.
func WriteComparison(w io.Writer, prev, cur []Result) {
	if len(prev) == 0 {
		fmt.Fprintln(w, "No previous run is recorded (docs/benchmarks.jsonl): nothing to compare with.")
		return
	}
	before := map[string]*Result{}
	for i := range prev {
		before[compareKey(&prev[i])] = &prev[i]
	}
	fmt.Fprintf(w, "Against the previous recorded run (%s): CPU over every process on the path, per delivery, per connection (idle) or per reconnect (storm). A rise of more than %.0f %% is marked.\n\n",
		runTime(prev), RegressionLimit*100)
	fmt.Fprintln(w, "| scenario | row | figure | previous | this run | change | |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | --- |")
	regressions := 0
	for i := range cur {
		r := &cur[i]
		p, ok := before[compareKey(r)]
		if !ok {
			continue
		}
		_, a := compareFigure(p)
		what, b := compareFigure(r)
		if a == 0 || b == 0 {
			continue
		}
		change := b/a - 1
		mark := ""
		if change > RegressionLimit {
			mark = "**regression**"
			regressions++
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.1f µs | %.1f µs | %+.0f %% | %s |\n", r.Scenario, compareRow(r), what, a, b, math.Round(change*100), mark)
	}
	if regressions > 0 {
		fmt.Fprintf(w, "\n%d row(s) rose by more than %.0f %%: their causes are given below.\n", regressions, RegressionLimit*100)
	}
}

// compareKey is what matches a row with the same row of another run.
func compareKey(r *Result) string {
	return fmt.Sprintf("%s|%s|%s|%d|%.0f|%d", r.Scenario, r.name(), r.Publish, r.APIBatch, r.Rate, r.Conns)
}

// compareRow names a row in the comparison.
func compareRow(r *Result) string {
	n := r.rowName()
	if r.Rate > 0 && r.Scenario == ScenarioFanout {
		n += fmt.Sprintf(", %.0f msg/s", r.Rate)
	}
	return n
}

// compareFigure is the CPU figure a row is compared by, over every named
// process, in µs.
func compareFigure(r *Result) (string, float64) {
	all := r.allProcs()
	switch r.Scenario {
	case ScenarioIdle:
		return "per connection", all.ConnectCPUPerConnUS
	case ScenarioStorm:
		if r.Reconnected == 0 {
			return "per reconnect", 0
		}
		return "per reconnect", all.CPUS / float64(r.Reconnected) * 1e6
	}
	return "per delivery", all.CPUPerDeliveryUS
}

// runTime is when a run started: its first row's time.
func runTime(rs []Result) string {
	if len(rs) == 0 || rs[0].Time == "" {
		return "time unknown"
	}
	return rs[0].Time
}
