package bench

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteTables writes the results as Markdown, one table per scenario in
// the order the scenarios first appear, one row per result. The server
// column is each result's label (its server group's name when unlabelled),
// marked "(API publishers)" when its publishers posted through the tenant
// API; CPU and memory figures are those of the result's server group,
// with the other named processes listed beside.
func WriteTables(w io.Writer, results []Result) {
	skewed := false
	for i := range results {
		if results[i].Publish == PublishAPI {
			results[i].Label = results[i].name() + " (API publishers)"
		}
		if results[i].OtherCores > OtherCoresWarn {
			results[i].Label = results[i].name() + " ⚠"
			skewed = true
		}
	}
	defer func() {
		if skewed {
			fmt.Fprintf(w, "\n⚠ Other work used more than %.2f cores of the machine during that window (`other_cores` in its JSON line): its figures are skewed.\n", OtherCoresWarn)
		}
	}()
	var order []string
	by := map[string][]Result{}
	for _, r := range results {
		if _, ok := by[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	for i, sc := range order {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "### %s\n\n", sc)
		rows := by[sc]
		switch sc {
		case ScenarioIdle:
			fmt.Fprintln(w, "| server | connections | connects/s | connect p50 / p99 ms | RSS per conn | cores per 10k idle conns | connect CPU per conn | other processes | load tool cores |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d of %d | %.0f | %.1f / %.1f | %s | %.3f | %.0f µs | %s | %.2f |\n",
					r.name(), r.Connected, r.Conns, r.ConnectRate, r.ConnectP50MS, r.ConnectP99MS,
					bytesText(s.RSSPerConn), s.CoresPer10k, s.ConnectCPUPerConnUS,
					r.others(func(p ProcResult) string { return bytesText(p.RSSPerConn) + "/conn" }), r.LoadTool.Cores)
			}
		case ScenarioStorm:
			fmt.Fprintln(w, "| server | clients | channels | msg/s | all back in | reconnect p50 / p99 ms | retries | not back | resumed (not recovered) | delivered | lost | dup | server CPU | other processes |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f s | %.0f / %.0f | %d | %d | %d (%d) | %d | %d | %d | %.2f s | %s |\n",
					r.name(), r.Connected, r.Channels, r.Rate, r.StormS, r.ReconnectP50, r.ReconnectP99, r.Retries, r.NotBack,
					r.Resumed, r.NotRecovered, r.Delivered, r.Lost, r.Duplicated, s.CPUS,
					r.others(func(p ProcResult) string { return fmt.Sprintf("%.2f s", p.CPUS) }))
			}
		default:
			fmt.Fprintln(w, "| server | clients | channels | msg/s | deliveries/s | p50 / p99 / p99.9 / max ms | lost | dup | server CPU per delivery | server cores | other processes per delivery | load tool CPU per delivery |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.0f | %.1f / %.1f / %.1f / %.1f | %d | %d | %.1f µs | %.2f | %s | %.1f µs |\n",
					r.name(), r.Connected, r.Channels, r.Rate, r.DeliveriesPerS,
					r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.Lost, r.Duplicated,
					s.CPUPerDeliveryUS, s.Cores,
					r.others(func(p ProcResult) string { return fmt.Sprintf("%.1f µs", p.CPUPerDeliveryUS) }),
					r.LoadTool.CPUPerDeliveryUS)
			}
			writeHighest(w, rows)
			for _, r := range rows {
				if r.Log != nil {
					fmt.Fprintf(w, "\nMessage log (%s): %d of %d messages stored in MySQL, %d missing, complete %.2f s after the last publisher's acknowledgement.\n",
						r.name(), r.Log.Stored, r.Acked, r.Log.Missing, r.Log.LagS)
				}
			}
		}
	}
}

// SweepP99 is the latency bound of the "highest rate" line under a
// sweep's table.
const SweepP99 = 100.0

// writeHighest writes, for each server swept over several rates, the
// highest rate whose p99 stayed within [SweepP99] ms with nothing lost.
func writeHighest(w io.Writer, rows []Result) {
	var names []string
	best := map[string]float64{}
	top := map[string]float64{}
	tried := map[string]int{}
	for _, r := range rows {
		n := r.name()
		if tried[n] == 0 {
			names = append(names, n)
		}
		tried[n]++
		top[n] = max(top[n], r.DeliveriesPerS)
		if r.Latency.P99 <= SweepP99 && r.Lost == 0 && r.DeliveriesPerS > best[n] {
			best[n] = r.DeliveriesPerS
		}
	}
	var parts []string
	for _, n := range names {
		switch b := best[n]; {
		case tried[n] < 2:
		case b == 0:
			parts = append(parts, n+" none of the rates tried")
		case b == top[n]:
			parts = append(parts, fmt.Sprintf("%s %.0f deliveries/s or more (the highest rate tried)", n, b))
		default:
			parts = append(parts, fmt.Sprintf("%s %.0f deliveries/s", n, b))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "\nHighest rate with p99 ≤ %.0f ms and nothing lost: %s.\n", SweepP99, strings.Join(parts, "; "))
	}
}

// name is the result's row name.
func (r *Result) name() string {
	if r.Label != "" {
		return r.Label
	}
	if r.Server != "" {
		return r.Server
	}
	return r.Target
}

// others lists the named processes other than the server, with one figure
// each.
func (r *Result) others(figure func(ProcResult) string) string {
	var names []string
	for n := range r.Procs {
		if n != r.Server {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "–"
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + figure(r.Procs[n])
	}
	return strings.Join(parts, ", ")
}

// ReplaceSection replaces what lies between the lines "<!-- bench:NAME
// -->" and "<!-- /bench:NAME -->" of a Markdown document with content.
func ReplaceSection(doc []byte, name, content string) ([]byte, error) {
	open, end := []byte("<!-- bench:"+name+" -->\n"), []byte("<!-- /bench:"+name+" -->")
	i := bytes.Index(doc, open)
	if i < 0 {
		return nil, fmt.Errorf("no %q marker", strings.TrimSpace(string(open)))
	}
	j := bytes.Index(doc[i:], end)
	if j < 0 {
		return nil, fmt.Errorf("no %q marker", end)
	}
	j += i
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	out := make([]byte, 0, len(doc)+len(content))
	out = append(out, doc[:i+len(open)]...)
	out = append(out, content...)
	return append(out, doc[j:]...), nil
}

// WriteTargets writes the targets for a 2-core machine as a
// Markdown table, each with what the results measured and whether it is
// met. A target whose run is missing (another size, a failed run) says
// so.
func WriteTargets(w io.Writer, results []Result) {
	find := func(match func(r *Result) bool) []*Result {
		var out []*Result
		for i := range results {
			if match(&results[i]) {
				out = append(out, &results[i])
			}
		}
		return out
	}
	fanout := func(server string, rate float64) *Result {
		rs := find(func(r *Result) bool {
			return r.Scenario == ScenarioFanout && r.Server == server && r.Conns == 5000 && r.Channels == 50 && r.Rate == rate
		})
		if len(rs) == 0 {
			return nil
		}
		return rs[0]
	}
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	fmt.Fprintln(w, "| target (2 cores, load tool on the same machine, UA reached directly) | measured | met |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	row := func(target, measured, met string) { fmt.Fprintf(w, "| %s | %s | %s |\n", target, measured, met) }
	missing := func(target string) { row(target, "not run at this size", "–") }

	const t1 = "fanout, 5,000 clients in 50 channels, 100-byte payloads, 40,000 deliveries/s: UA CPU per delivery ≤ the bare server's, p99 ≤ 50 ms, nothing lost"
	if ua, bare := fanout("ua", 400), fanout("bare", 400); ua != nil && bare != nil {
		u, b := ua.Procs["ua"].CPUPerDeliveryUS, bare.Procs["bare"].CPUPerDeliveryUS
		row(t1, fmt.Sprintf("UA %.1f µs (bare %.1f µs), p99 %.1f ms, %d lost", u, b, ua.Latency.P99, ua.Lost),
			yes(u <= b && ua.Latency.P99 <= 50 && ua.Lost == 0))
	} else {
		missing(t1)
	}
	const t2 = "fanout: the highest rate with p99 ≤ 100 ms ≥ 58,000 deliveries/s"
	if rs := find(func(r *Result) bool {
		return r.Scenario == ScenarioFanout && r.Server == "ua" && r.Conns == 5000 && r.Channels == 50
	}); len(rs) > 1 {
		best := 0.0
		for _, r := range rs {
			if r.Latency.P99 <= SweepP99 && r.Lost == 0 {
				best = max(best, r.DeliveriesPerS)
			}
		}
		row(t2, fmt.Sprintf("%.0f deliveries/s", best), yes(best >= 58000))
	} else {
		missing(t2)
	}
	const t3 = "room, 2,000 in one channel, 10 messages/s: p99 ≤ 40 ms using ≤ 0.4 of a core in the UA"
	if rs := find(func(r *Result) bool { return r.Scenario == ScenarioRoom && r.Server == "ua" && r.Conns == 2000 }); len(rs) > 0 {
		r := rs[0]
		row(t3, fmt.Sprintf("p99 %.1f ms, %.2f cores", r.Latency.P99, r.Procs["ua"].Cores), yes(r.Latency.P99 <= 40 && r.Procs["ua"].Cores <= 0.4))
	} else {
		missing(t3)
	}
	const t4 = "room, 20,000 in one channel across two UA processes, 1 message/s: p99 ≤ 100 ms"
	if rs := find(func(r *Result) bool { return r.Scenario == ScenarioRoom && r.Conns == 20000 }); len(rs) > 0 {
		r := rs[0]
		row(t4, fmt.Sprintf("p99 %.1f ms, %d lost", r.Latency.P99, r.Lost), yes(r.Latency.P99 <= 100 && r.Lost == 0))
	} else {
		missing(t4)
	}
	if rs := find(func(r *Result) bool { return r.Scenario == ScenarioIdle && r.Server == "ua" && r.Conns == 19000 }); len(rs) > 0 {
		r, p := rs[0], rs[0].Procs["ua"]
		row("idle, 19,000 connections on one UA process: ≤ 16 KiB RSS per connection", bytesText(p.RSSPerConn), yes(p.RSSPerConn <= 16<<10))
		row("idle: ≤ 5% of a core per 10,000 idle connections", fmt.Sprintf("%.1f%%", 100*p.CoresPer10k), yes(p.CoresPer10k <= 0.05))
		row("idle: ≥ 3,500 connections/s, token lookups included", fmt.Sprintf("%.0f/s", r.ConnectRate), yes(r.ConnectRate >= 3500))
	} else {
		missing("idle, 19,000 connections on one UA process")
	}
	const t6 = "log path: a sustained 10,000 chat messages/s all in MySQL, none lost, the log writer's lag under 2 s"
	if rs := find(func(r *Result) bool { return r.Log != nil }); len(rs) > 0 {
		r := rs[0]
		// Publishers that fell behind schedule sent their last messages
		// late: the rate sustained is over the window and that delay.
		sustained := float64(r.Acked) / max(r.DurationS+r.LatenessMS/1000, 1e-9)
		row(t6, fmt.Sprintf("%.0f msg/s acknowledged, %d of %d in MySQL, done %.2f s after the last", sustained, r.Log.Stored, r.Acked, r.Log.LagS),
			yes(sustained >= 9500 && r.Log.Missing == 0 && r.Lost == 0 && r.Log.LagS < 2))
	} else {
		missing(t6)
	}
}
