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
// column is each result's label (its server group's name when unlabelled);
// CPU and memory figures are those of the result's server group, with the
// other named processes listed beside.
func WriteTables(w io.Writer, results []Result) {
	skewed := false
	for i := range results {
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
			fmt.Fprintln(w, "| server | clients | channels | msg/s | all back in | reconnect p50 / p99 ms | retries | not back | delivered | lost | dup | server CPU | other processes |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f s | %.0f / %.0f | %d | %d | %d | %d | %d | %.2f s | %s |\n",
					r.name(), r.Connected, r.Channels, r.Rate, r.StormS, r.ReconnectP50, r.ReconnectP99, r.Retries, r.NotBack,
					r.Delivered, r.Lost, r.Duplicated, s.CPUS,
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
