package ua

import (
	"net/http"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a UA server's Prometheus metrics, served at /metrics.
type metrics struct {
	reg        *prometheus.Registry
	sessions   prometheus.Gauge
	connects   *prometheus.CounterVec
	delivered  *prometheus.CounterVec
	slow       prometheus.Counter
	refused    *prometheus.CounterVec
	rtt        *prometheus.HistogramVec
	published  *prometheus.CounterVec
	tenantSess *prometheus.GaugeVec
	ng         *prometheus.CounterVec
	resumes    *prometheus.CounterVec
	peak       peakBytes
	gaps       prometheus.Counter
	repaired   prometheus.Counter
	unrepaired prometheus.Counter
	fenced     prometheus.Gauge
	fences     prometheus.Counter
	busMsgs    prometheus.Counter
	// presenceStormHeld counts leaves held for the storm grace.
	presenceStormHeld prometheus.Counter
	rttEvery          time.Duration
	handler           http.Handler
	versionTag        string
}

func newMetrics(version string, more ...prometheus.Collector) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kaiwa_ua_sessions", Help: "Open WebSocket sessions.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_connects_total", Help: "Sessions that became ready, by tenant.",
		}, []string{"tenant"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_deliveries_total", Help: "Messages queued to local sessions, by tenant.",
		}, []string{"tenant"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_published_total", Help: "Messages sessions published to the stream, by tenant.",
		}, []string{"tenant"}),
		tenantSess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kaiwa_ua_tenant_sessions", Help: "Open authenticated sessions, by tenant and protocol version.",
		}, []string{"tenant", "version"}),
		ng: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_ng_total", Help: "Messages holding an NG word, by tenant and action (blocked, masked).",
		}, []string{"tenant", "action"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_resumes_total", Help: "Channels v2 clients resumed, by tenant and whether all they missed was replayed (recovered true or false).",
		}, []string{"tenant", "recovered"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_gaps_total", Help: "Gaps in a channel's live deliveries found by their prev, each repaired from the stream.",
		}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_gap_messages_total", Help: "Missed messages read from the stream and delivered by gap repairs.",
		}),
		unrepaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_gaps_unrepaired_total", Help: "Gaps too large to replay whole (past RepairMax messages).",
		}),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kaiwa_ua_fenced", Help: "1 while the UA is fenced: the message bus has been unreachable too long, sessions are refused.",
		}),
		fences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_fences_total", Help: "Times the UA fenced itself after losing the message bus.",
		}),
		busMsgs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_bus_messages_total", Help: "Chat and system messages the UA's subscriptions received from the bus: one per message per UA process, however many local members it has.",
		}),
		presenceStormHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_presence_storm_held_total", Help: "Leaves held for the presence storm grace: their channel's members were dropping together.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_slow_consumers_total", Help: "Sessions closed because their send queue overflowed.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_errors_total", Help: "Error replies sent to clients, by code.",
		}, []string{"code"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kaiwa_ua_rtt_seconds",
			Help:    "Round-trip time between the server and its v2 clients, from the frame clocks, by tenant.",
			Buckets: []float64{.005, .01, .02, .04, .08, .12, .2, .3, .5, 1, 2, 5},
		}, []string{"tenant"}),
		rttEvery:   5 * time.Second,
		versionTag: version,
	}
	reg.MustRegister(m.sessions, m.connects, m.delivered, m.published, m.gaps, m.repaired, m.unrepaired, m.fenced, m.fences, m.busMsgs, m.presenceStormHeld, m.slow, m.refused, m.rtt,
		m.tenantSess, m.ng, m.resumes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kaiwa_ua_outbox_peak_bytes", Help: "The most bytes any session's outbox held in the last minute (sampled with the pings).",
		}, m.peak.max),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	reg.MustRegister(more...)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) error(code kaiwa.Code) { m.refused.WithLabelValues(string(code)).Inc() }

// peakBytes keeps the largest outbox seen per 5 s over the last minute.
type peakBytes struct {
	mu    sync.Mutex
	slots [12]struct{ at, n int64 }
}

// observe records an outbox's peak.
func (p *peakBytes) observe(n int, now time.Time) {
	slot := now.Unix() / 5
	p.mu.Lock()
	s := &p.slots[slot%int64(len(p.slots))]
	if s.at != slot {
		s.at, s.n = slot, 0
	}
	s.n = max(s.n, int64(n))
	p.mu.Unlock()
}

// max returns the largest peak of the last minute.
func (p *peakBytes) max() float64 {
	slot := time.Now().Unix() / 5
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, s := range p.slots {
		if s.at > slot-int64(len(p.slots)) {
			n = max(n, s.n)
		}
	}
	return float64(n)
}
