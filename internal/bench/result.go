package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Result is what one run measured; [Result.WriteSummary] prints it for
// people and its JSON encoding is the one line machines read.
type Result struct {
	Scenario string `json:"scenario"`
	Label    string `json:"label,omitempty"`
	// Server names the process group under test (a key of Procs).
	Server string `json:"server,omitempty"`
	Target string `json:"target"`
	// Time is when the run started (RFC 3339).
	Time string `json:"time"`

	Conns         int     `json:"conns"`
	Connected     int     `json:"connected"`
	ConnectFailed int     `json:"connect_failed"`
	ConnectRate   float64 `json:"connect_rate"`
	ConnectP50MS  float64 `json:"connect_p50_ms"`
	ConnectP99MS  float64 `json:"connect_p99_ms"`
	// ConnectErrors counts failed attempts by error.
	ConnectErrors map[string]int `json:"connect_errors,omitempty"`

	Channels   int     `json:"channels,omitempty"`
	Publishers int     `json:"publishers,omitempty"`
	Rate       float64 `json:"rate,omitempty"` // messages per second asked for
	Payload    int     `json:"payload,omitempty"`
	DurationS  float64 `json:"duration_s"`
	// Publish is how the publishers sent, when there were any: "ws" (say
	// ops on their own connections, [PublishWS]) or "api" (system
	// messages posted to the tenant API, [PublishAPI]). Results written
	// before it existed lack it: they are "ws".
	Publish string `json:"publish,omitempty"`
	// APIBatch, with Publish "api", is the most messages one call posted
	// ([APITarget.Batch]); 0 when each message was a call of its own.
	APIBatch int `json:"api_batch,omitempty"`
	// WindowS is how long the window really lasted, its drain included:
	// the time CPU figures are spread over.
	WindowS float64 `json:"window_s"`
	Workers int     `json:"workers"`

	Sent          uint64            `json:"sent,omitempty"`
	Acked         uint64            `json:"acked,omitempty"`
	PublishErrors map[string]uint64 `json:"publish_errors,omitempty"`
	// LatenessMS is the most any publisher fell behind its schedule.
	LatenessMS float64 `json:"lateness_ms,omitempty"`

	// Delivered counts first deliveries of the run's messages;
	// DeliveriesPerS is Delivered over the window's duration.
	Delivered      uint64  `json:"delivered"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	Latency        Lat     `json:"latency_ms"`
	AckLatency     Lat     `json:"ack_ms"`
	// Expected deliveries, and those lost (expected, never came),
	// duplicated (came again), unacked (delivered though the send failed)
	// and foreign (no message of this run).
	Expected   uint64 `json:"expected"`
	Lost       uint64 `json:"lost"`
	Duplicated uint64 `json:"duplicated"`
	Unacked    uint64 `json:"unacked,omitempty"`
	Foreign    uint64 `json:"foreign,omitempty"`
	// OtherEvents counts pushed ops that are not messages (presence, ...).
	OtherEvents uint64 `json:"other_events,omitempty"`
	// Dropped counts clients ended by the server or the network during
	// the window.
	Dropped     int            `json:"dropped"`
	DropReasons map[string]int `json:"drop_reasons,omitempty"`

	// Storm: seconds from the drop until the last client was back, and
	// how reconnecting went.
	StormS       float64 `json:"storm_s,omitempty"`
	Reconnected  int     `json:"reconnected,omitempty"`
	NotBack      int     `json:"not_back,omitempty"`
	ReconnectP50 float64 `json:"reconnect_p50_ms,omitempty"`
	ReconnectP99 float64 `json:"reconnect_p99_ms,omitempty"`
	Retries      int     `json:"retries,omitempty"`
	// Resumed counts the channels v2 clients resumed after the drop (one
	// "resumed" event each), NotRecovered those whose gap history no
	// longer covered.
	Resumed      uint64         `json:"resumed,omitempty"`
	NotRecovered uint64         `json:"not_recovered,omitempty"`
	StormErrors  map[string]int `json:"storm_errors,omitempty"`

	// Log is what the message log holds of the run (with a log check).
	Log *LogResult `json:"log,omitempty"`

	// MachineCores is the whole machine's busy CPU during the window (from
	// /proc/stat), in cores; OtherCores what of it neither the named
	// processes nor the load tool used: work from elsewhere that skews the
	// figures when it is not small.
	MachineCores float64 `json:"machine_cores"`
	OtherCores   float64 `json:"other_cores"`

	// Procs are the named server processes, by name.
	Procs map[string]ProcResult `json:"procs,omitempty"`
	// LoadTool is the load generator's own cost during the window.
	LoadTool ToolResult `json:"load_tool"`
}

// Lat is a latency distribution in milliseconds.
type Lat struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func latOf(h *Histogram) Lat {
	return Lat{
		P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
	}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// ProcResult is one named group of server processes (their figures
// added up).
type ProcResult struct {
	PIDs []int `json:"pids"`
	// CPUS is the CPU seconds used during the window; Cores is that over
	// the window's duration.
	CPUS  float64 `json:"cpu_s"`
	Cores float64 `json:"cores"`
	// CPUPerDeliveryUS is CPU microseconds per delivery (message scenarios).
	CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us,omitempty"`
	// CoresPer10k is Cores per 10,000 connections (idle).
	CoresPer10k float64 `json:"cores_per_10k_conns,omitempty"`
	// ConnectCPUS is the CPU used while the clients connected;
	// ConnectCPUPerConnUS that per connection.
	ConnectCPUS         float64 `json:"connect_cpu_s"`
	ConnectCPUPerConnUS float64 `json:"connect_cpu_per_conn_us,omitempty"`
	// RSS before any client connected, once all had, and at the end.
	RSSBefore int64 `json:"rss_before"`
	RSSConn   int64 `json:"rss_connected"`
	RSSAfter  int64 `json:"rss_after"`
	// RSSPerConn is (RSSConn − RSSBefore) per connected client.
	RSSPerConn int64 `json:"rss_per_conn"`
}

// LogResult is what the message log (MySQL) holds of a run's messages.
type LogResult struct {
	// Stored counts the run's messages in the log; Missing the
	// acknowledged ones it does not hold when the check gave up.
	Stored  uint64 `json:"stored"`
	Missing uint64 `json:"missing"`
	// LagS is how long after the window's end (or the last publisher's
	// acknowledgement, when later) the log held every message.
	LagS float64 `json:"lag_s"`
}

// ToolResult is the load tool's own cost.
type ToolResult struct {
	CPUS             float64 `json:"cpu_s"`
	Cores            float64 `json:"cores"`
	CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us,omitempty"`
	FileLimit        uint64  `json:"file_limit"`
}

// OtherCoresWarn is the CPU, in cores, other processes may use during a
// window before its figures are marked as skewed.
const OtherCoresWarn = 0.15

// WriteSummary writes the result for people.
func (r *Result) WriteSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("%s against %s (%s)", r.Scenario, r.Target, r.Time)
	if r.Label != "" {
		p("  label       %s", r.Label)
	}
	p("  clients     %d of %d connected (%d failed) by %d worker(s); %.0f connections/s, connect p50 %.1f ms, p99 %.1f ms",
		r.Connected, r.Conns, r.ConnectFailed, r.Workers, r.ConnectRate, r.ConnectP50MS, r.ConnectP99MS)
	for _, k := range sortedKeys(r.ConnectErrors) {
		p("    connect error %dx: %s", r.ConnectErrors[k], k)
	}
	if r.Scenario == ScenarioStorm {
		p("  storm       %d of %d back in %.2f s (reconnect p50 %.1f ms, p99 %.1f ms, %d retries); %d channels resumed, %d not recovered",
			r.Reconnected, r.Reconnected+r.NotBack, r.StormS, r.ReconnectP50, r.ReconnectP99, r.Retries, r.Resumed, r.NotRecovered)
		for _, k := range sortedKeys(r.StormErrors) {
			p("    reconnect error %dx: %s", r.StormErrors[k], k)
		}
	}
	if r.Sent > 0 || r.Rate > 0 {
		via := ""
		if r.Publish == PublishAPI {
			via = " posting through the API"
		}
		p("  publishing  %d publishers%s in %d channel(s) at %.0f msg/s, %d-byte payloads, %.1f s: sent %d, acked %d, most behind schedule %.1f ms",
			r.Publishers, via, r.Channels, r.Rate, r.Payload, r.DurationS, r.Sent, r.Acked, r.LatenessMS)
		for _, k := range sortedKeys(r.PublishErrors) {
			p("    publish error %dx: %s", r.PublishErrors[k], k)
		}
		p("  delivery    %d of %d expected, %.0f deliveries/s; lost %d, duplicated %d, unacked %d, foreign %d",
			r.Delivered, r.Expected, r.DeliveriesPerS, r.Lost, r.Duplicated, r.Unacked, r.Foreign)
		p("  latency     p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms (ack p50 %.2f, p99 %.2f ms)",
			r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.AckLatency.P50, r.AckLatency.P99)
	}
	if r.Log != nil {
		p("  message log %d stored, %d missing; complete %.1f s after the window", r.Log.Stored, r.Log.Missing, r.Log.LagS)
	}
	if r.Dropped > 0 {
		p("  dropped     %d clients during the window", r.Dropped)
		for _, k := range sortedKeys(r.DropReasons) {
			p("    %dx: %s", r.DropReasons[k], k)
		}
	}
	names := make([]string, 0, len(r.Procs))
	for n := range r.Procs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pr := r.Procs[n]
		var extra []string
		if pr.CPUPerDeliveryUS > 0 {
			extra = append(extra, fmt.Sprintf("%.2f µs/delivery", pr.CPUPerDeliveryUS))
		}
		if pr.CoresPer10k > 0 {
			extra = append(extra, fmt.Sprintf("%.3f cores per 10k conns", pr.CoresPer10k))
		}
		p("  %-11s pid %v: %.2f CPU s (%.2f cores) %s; connect %.1f µs/conn; RSS %s → %s (%s/conn) → %s",
			n, pr.PIDs, pr.CPUS, pr.Cores, strings.Join(extra, ", "), pr.ConnectCPUPerConnUS,
			bytesText(pr.RSSBefore), bytesText(pr.RSSConn), bytesText(pr.RSSPerConn), bytesText(pr.RSSAfter))
	}
	lt := fmt.Sprintf("  load tool   %.2f CPU s (%.2f cores)", r.LoadTool.CPUS, r.LoadTool.Cores)
	if r.LoadTool.CPUPerDeliveryUS > 0 {
		lt += fmt.Sprintf(", %.2f µs/delivery", r.LoadTool.CPUPerDeliveryUS)
	}
	p("%s; file limit %d", lt, r.LoadTool.FileLimit)
	warn := ""
	if r.OtherCores > OtherCoresWarn {
		warn = " — other work on this machine skews these figures"
	}
	p("  machine     %.2f cores busy, %.2f of them by other processes%s", r.MachineCores, r.OtherCores, warn)
}

func bytesText(n int64) string {
	switch a := max(n, -n); {
	case a >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case a >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
