package ua

import (
	"net/http"
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
	delivered  prometheus.Counter
	slow       prometheus.Counter
	refused    *prometheus.CounterVec
	rtt        *prometheus.HistogramVec
	published  prometheus.Counter
	gaps       prometheus.Counter
	repaired   prometheus.Counter
	unrepaired prometheus.Counter
	fenced     prometheus.Gauge
	fences     prometheus.Counter
	busMsgs    prometheus.Counter
	rttEvery   time.Duration
	handler    http.Handler
	versionTag string
}

func newMetrics(version string) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kaiwa_ua_sessions", Help: "Open WebSocket sessions.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_ua_connects_total", Help: "Sessions that became ready, by tenant.",
		}, []string{"tenant"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_deliveries_total", Help: "Messages queued to local sessions.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kaiwa_ua_published_total", Help: "Messages sessions published to the stream.",
		}),
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
	reg.MustRegister(m.sessions, m.connects, m.delivered, m.published, m.gaps, m.repaired, m.unrepaired, m.fenced, m.fences, m.busMsgs, m.slow, m.refused, m.rtt,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) error(code kaiwa.Code) { m.refused.WithLabelValues(string(code)).Inc() }
