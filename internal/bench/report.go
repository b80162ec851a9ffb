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
// API; CPU and memory figures are those of the result's server group, with
// the other named processes listed beside and every named process added
// up (the whole path: nginx, UAs, API, NATS, MySQL).
func WriteTables(w io.Writer, results []Result) {
	skewed := false
	for i := range results {
		results[i].Label = results[i].rowName()
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
			fmt.Fprintln(w, "| server | connections | connects/s | connect p50 / p99 ms | RSS per conn | all processes: RSS per conn | cores per 10k idle conns | connect CPU per conn | all processes: connect CPU per conn | other processes | load tool cores |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
			for _, r := range rows {
				s, all := r.Procs[r.Server], r.allProcs()
				fmt.Fprintf(w, "| %s | %d of %d | %.0f | %.1f / %.1f | %s | %s | %.3f | %.0f µs | %.0f µs | %s | %.2f |\n",
					r.name(), r.Connected, r.Conns, r.ConnectRate, r.ConnectP50MS, r.ConnectP99MS,
					bytesText(s.RSSPerConn), bytesText(all.RSSPerConn), s.CoresPer10k, s.ConnectCPUPerConnUS, all.ConnectCPUPerConnUS,
					r.others(func(p ProcResult) string { return bytesText(p.RSSPerConn) + "/conn" }), r.LoadTool.Cores)
			}
		case ScenarioStorm:
			fmt.Fprintln(w, "| server | clients | channels | msg/s | all back in | reconnect p50 / p99 ms | retries | not back | resumed (not recovered) | delivered | lost | dup | server CPU | all processes CPU | other processes |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f s | %.0f / %.0f | %d | %d | %d (%d) | %d | %d | %d | %.2f s | %.2f s | %s |\n",
					r.name(), r.Connected, r.Channels, r.Rate, r.StormS, r.ReconnectP50, r.ReconnectP99, r.Retries, r.NotBack,
					r.Resumed, r.NotRecovered, r.Delivered, r.Lost, r.Duplicated, s.CPUS, r.allProcs().CPUS,
					r.others(func(p ProcResult) string { return fmt.Sprintf("%.2f s", p.CPUS) }))
			}
		default:
			fmt.Fprintln(w, "| server | clients | channels | msg/s | deliveries/s | p50 / p99 / p99.9 / max ms | lost | dup | server CPU per delivery | all processes: CPU per delivery | server cores | other processes per delivery | load tool CPU per delivery |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
			for _, r := range rows {
				s := r.Procs[r.Server]
				fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.0f | %.1f / %.1f / %.1f / %.1f | %d | %d | %.1f µs | %.1f µs | %.2f | %s | %.1f µs |\n",
					r.name(), r.Connected, r.Channels, r.Rate, r.DeliveriesPerS,
					r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.Lost, r.Duplicated,
					s.CPUPerDeliveryUS, r.allProcs().CPUPerDeliveryUS, s.Cores,
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

// rowName is the result's row name with how its publishers sent, when
// through the API.
func (r *Result) rowName() string {
	switch {
	case r.Publish == PublishAPI && r.APIBatch > 1:
		return fmt.Sprintf("%s (API publishers, batches of up to %d)", r.name(), r.APIBatch)
	case r.Publish == PublishAPI:
		return r.name() + " (API publishers)"
	}
	return r.name()
}

// allProcs adds up every named process of the result: its CPU, its CPU
// per delivery and per connection, and its memory per connection.
func (r *Result) allProcs() ProcResult {
	var t ProcResult
	for _, p := range r.Procs {
		t.CPUS += p.CPUS
		t.Cores += p.Cores
		t.CPUPerDeliveryUS += p.CPUPerDeliveryUS
		t.CoresPer10k += p.CoresPer10k
		t.ConnectCPUS += p.ConnectCPUS
		t.ConnectCPUPerConnUS += p.ConnectCPUPerConnUS
		t.RSSBefore += p.RSSBefore
		t.RSSConn += p.RSSConn
		t.RSSAfter += p.RSSAfter
		t.RSSPerConn += p.RSSPerConn
		t.PIDs = append(t.PIDs, p.PIDs...)
	}
	return t
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

// WriteTargets writes the table of the real-path targets (Kaiwa's issue
// 11): each a ratio of a "kaiwa" row, reached through nginx with TLS, to
// the "bare" row of the same run, the bare reference server behind the
// same nginx. Rows are found by label ("kaiwa", "bare", "kaiwa ×2",
// "bare ×2", "kaiwa, log", "kaiwa v2, talking"), size and publishing
// (game clients, or the game server through the API).
func WriteTargets(w io.Writer, results []Result) {
	find := func(scenario, label string, match func(r *Result) bool) []*Result {
		var out []*Result
		for i := range results {
			r := &results[i]
			if r.Scenario == scenario && r.name() == label && (match == nil || match(r)) {
				out = append(out, r)
			}
		}
		return out
	}
	first := func(rs []*Result) *Result {
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
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	fmt.Fprintln(w, "| target (2 cores, load tool on the same machine; clients through nginx with TLS; reference: the bare server behind the same nginx, same run) | Kaiwa | reference | ratio | met |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | --- |")
	row := func(target, kaiwa, ref string, r float64, met bool) {
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %s |\n", target, kaiwa, ref, r, yes(met))
	}
	missing := func(target string) { fmt.Fprintf(w, "| %s | not run at this size | | | – |\n", target) }

	fanout := func(label string, api bool, rate float64) *Result {
		return first(find(ScenarioFanout, label, func(r *Result) bool {
			return r.Conns == 5000 && r.Channels == 50 && r.Rate == rate && (r.Publish == PublishAPI) == api
		}))
	}
	for _, c := range []struct {
		api bool
		who string
	}{{false, "game clients"}, {true, "the game server through the API"}} {
		t := "fanout, 5,000 clients in 50 channels, 100-byte messages, 40,000 deliveries/s, published by " + c.who +
			": everything delivered, p99 ≤ 1.2×, CPU per delivery (all processes) ≤ 1.15×"
		k, b := fanout("kaiwa", c.api, 400), fanout("bare", false, 400)
		if k == nil || b == nil {
			missing(t)
			continue
		}
		kc, bc := k.allProcs().CPUPerDeliveryUS, b.allProcs().CPUPerDeliveryUS
		delivered := k.Lost == 0 && k.Delivered > 0 && k.Delivered == k.Expected
		row(t, fmt.Sprintf("%.0f/s, p99 %.1f ms, %.1f µs, %d lost", k.DeliveriesPerS, k.Latency.P99, kc, k.Lost),
			fmt.Sprintf("%.0f/s, p99 %.1f ms, %.1f µs", b.DeliveriesPerS, b.Latency.P99, bc),
			ratio(kc, bc), delivered && k.Latency.P99 <= 1.2*b.Latency.P99 && kc <= 1.15*bc)
	}

	highest := func(label string) (float64, int) {
		rs := find(ScenarioFanout, label, func(r *Result) bool { return r.Conns == 5000 && r.Channels == 50 && r.Publish != PublishAPI })
		best := 0.0
		for _, r := range rs {
			if r.Latency.P99 <= SweepP99 && r.Lost == 0 {
				best = max(best, r.DeliveriesPerS)
			}
		}
		return best, len(rs)
	}
	const tHigh = "fanout: the highest rate with p99 ≤ 100 ms and nothing lost ≥ 0.9×"
	// A sweep stops at the first rate whose p99 passes the bound: one row
	// is a sweep too when the other server's has several.
	hk, nk := highest("kaiwa")
	hb, nb := highest("bare")
	if nk > 0 && nb > 0 && nk+nb > 2 {
		rate := func(v float64) string {
			if v == 0 {
				return "none of the rates tried"
			}
			return fmt.Sprintf("%.0f deliveries/s", v)
		}
		row(tHigh, rate(hk), rate(hb), ratio(hk, hb), hk >= 0.9*hb && hk > 0)
	} else {
		missing(tHigh)
	}

	for _, c := range []struct {
		target, kaiwa, bare string
		conns               int
	}{
		{"room, 2,000 in one channel, 10 messages/s: p99 ≤ 1.2×", "kaiwa", "bare", 2000},
		{"room, 20,000 in one channel on two UA processes, 1 message/s: p99 ≤ 1.2×", "kaiwa ×2", "bare ×2", 20000},
	} {
		size := func(r *Result) bool { return r.Conns == c.conns }
		k, b := first(find(ScenarioRoom, c.kaiwa, size)), first(find(ScenarioRoom, c.bare, size))
		if k == nil || b == nil {
			missing(c.target)
			continue
		}
		row(c.target, fmt.Sprintf("p99 %.1f ms, %d lost", k.Latency.P99, k.Lost), fmt.Sprintf("p99 %.1f ms", b.Latency.P99),
			ratio(k.Latency.P99, b.Latency.P99), k.Lost == 0 && k.Latency.P99 <= 1.2*b.Latency.P99)
	}

	idle := func(label string) *Result {
		return first(find(ScenarioIdle, label, func(r *Result) bool { return r.Conns == 10000 }))
	}
	const tMem, tRate = "idle, 10,000 connections: memory per connection (all processes) ≤ 1.2×",
		"connecting: connections/s, token check included, ≥ 0.8×"
	k, b := idle("kaiwa"), idle("bare")
	if k != nil && b != nil {
		km, bm := k.allProcs().RSSPerConn, b.allProcs().RSSPerConn
		row(tMem, bytesText(km)+" ("+k.Procs["nginx"].rssText()+" nginx)", bytesText(bm)+" ("+b.Procs["nginx"].rssText()+" nginx)",
			ratio(float64(km), float64(bm)), k.Connected == k.Conns && float64(km) <= 1.2*float64(bm))
		row(tRate, fmt.Sprintf("%.0f/s", k.ConnectRate), fmt.Sprintf("%.0f/s", b.ConnectRate),
			ratio(k.ConnectRate, b.ConnectRate), k.ConnectRate >= 0.8*b.ConnectRate)
	} else {
		missing(tMem)
		missing(tRate)
	}

	const tStorm = "storm: 10,000 clients cut at once all back (nginx, TLS, token lookup, resume) within 1.5× the reference's time to connect 10,000, none refused"
	if s := first(find(ScenarioStorm, "kaiwa", func(r *Result) bool { return r.Conns == 10000 })); s != nil && b != nil && b.ConnectRate > 0 {
		ref := float64(b.Conns) / b.ConnectRate
		row(tStorm, fmt.Sprintf("%.2f s, %d not back, %d retries", s.StormS, s.NotBack, s.Retries), fmt.Sprintf("%.2f s", ref),
			ratio(s.StormS, ref), s.NotBack == 0 && s.Retries == 0 && s.StormS <= 1.5*ref)
	} else {
		missing(tStorm)
	}
	const tResume = "storm with talk going on, v2 clients: nothing lost, nothing twice"
	if s := first(find(ScenarioStorm, "kaiwa v2, talking", nil)); s != nil {
		fmt.Fprintf(w, "| %s | %d delivered, %d lost, %d duplicated | – | – | %s |\n", tResume, s.Delivered, s.Lost, s.Duplicated,
			yes(s.Lost == 0 && s.Duplicated == 0 && s.NotBack == 0))
	} else {
		missing(tResume)
	}

	// The game server's system messages ("kaiwa, system": one client per
	// channel, so a delivery is a message): what one API process sustains
	// posting one by one, and what a message costs over every process.
	system := func(batched bool) *Result {
		return first(find(ScenarioFanout, "kaiwa, system", func(r *Result) bool {
			return r.Publish == PublishAPI && r.Log != nil && (r.APIBatch > 1) == batched
		}))
	}
	const tPosts = "system messages: POST /channels/{ch}/messages sustains 5,000 messages/s through nginx to one API process, all in MySQL"
	if r := system(false); r != nil {
		sustained := r.sustained()
		fmt.Fprintf(w, "| %s | %.0f msg/s (asked %.0f), %d of %d in MySQL | – | – | %s |\n", tPosts, sustained, r.Rate,
			r.Log.Stored, r.Acked, yes(r.Rate >= 5000 && sustained >= onSchedule*r.Rate && r.Log.Missing == 0 && r.Lost == 0))
	} else {
		missing(tPosts)
	}
	const tCost = "system messages: CPU per message over every process ≤ 100 µs (one by one; in batches of POST /messages/batch)"
	if one, many := system(false), system(true); one != nil || many != nil {
		var parts []string
		best := 0.0
		for _, r := range []*Result{one, many} {
			if r == nil {
				continue
			}
			c := r.allProcs().CPUPerDeliveryUS
			how := "one by one"
			if r.APIBatch > 1 {
				how = fmt.Sprintf("in batches of up to %d", r.APIBatch)
			}
			parts = append(parts, fmt.Sprintf("%.0f µs %s", c, how))
			if best == 0 || c < best {
				best = c
			}
		}
		fmt.Fprintf(w, "| %s | %s | – | – | %s |\n", tCost, strings.Join(parts, "; "), yes(best > 0 && best <= 100))
	} else {
		missing(tCost)
	}

	const tLog = "log path: a sustained 10,000 chat messages/s through nginx, all in MySQL, the log writer's lag under 2 s"
	if r := first(find(ScenarioFanout, "kaiwa, log", func(r *Result) bool { return r.Log != nil })); r != nil {
		sustained := r.sustained()
		fmt.Fprintf(w, "| %s | %.0f msg/s acknowledged, %d of %d in MySQL, done %.2f s after the last | – | – | %s |\n",
			tLog, sustained, r.Log.Stored, r.Acked, r.Log.LagS,
			yes(sustained >= onSchedule*10000 && r.Log.Missing == 0 && r.Lost == 0 && r.Log.LagS < 2))
	} else {
		missing(tLog)
	}
}

// rssText is the process group's memory per connection, "–" when it is
// not measured.
func (p ProcResult) rssText() string {
	if len(p.PIDs) == 0 {
		return "–"
	}
	return bytesText(p.RSSPerConn)
}

// onSchedule is the share of a rate asked that a run must sustain for a
// rate target to be met: publishers on schedule on a busy machine still
// send their last message some milliseconds late (a hundredth of an 8 s
// window is 80 ms), while one that fell behind by a fiftieth did not
// sustain the rate.
const onSchedule = 0.99

// sustained is the rate of messages r's publishers had acknowledged over
// the window and their lateness at its end: publishers that fell behind
// schedule sent their last messages late.
func (r *Result) sustained() float64 {
	return float64(r.Acked) / max(r.DurationS+r.LatenessMS/1000, 1e-9)
}
