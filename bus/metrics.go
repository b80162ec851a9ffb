package bus

import (
	"context"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a bus's Prometheus metrics: its NATS connection, the
// messages it published by tenant, the directory requests it served, and
// its log writer's work. Labels are bounded: tenant, operation, code and
// log name, never a user or a channel.
type metrics struct {
	published  *prometheus.CounterVec
	dirServed  *prometheus.CounterVec
	dirSeconds *prometheus.HistogramVec
	written    *prometheus.CounterVec
	batch      *prometheus.HistogramVec
	lag        *prometheus.HistogramVec
	pending    *prometheus.GaugeVec
	writeErrs  *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_bus_published_total", Help: "Chat and system messages this process stored in the stream, by tenant (resends the stream de-duplicated not counted).",
		}, []string{"tenant"}),
		dirServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_directory_requests_total", Help: "Directory and stats requests this process answered, by operation and code (ok, or the refusal's error code).",
		}, []string{"op", "code"}),
		dirSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kaiwa_directory_request_seconds",
			Help:    "Time to answer a directory request, from its arrival at a worker, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3},
		}, []string{"op"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_logwriter_written_total", Help: "Entries the log writer committed to MySQL, by log (messages, events) and tenant.",
		}, []string{"log", "tenant"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kaiwa_logwriter_batch_size",
			Help:    "Entries per batch the log writer wrote, by log.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
		}, []string{"log"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kaiwa_logwriter_lag_seconds",
			Help:    "Time from a message's publish to its commit in the MySQL log, by log.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"log"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kaiwa_logwriter_pending", Help: "Entries waiting in the stream for the log writer (not yet delivered, or delivered and not yet acknowledged), by log.",
		}, []string{"log"}),
		writeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_logwriter_write_errors_total", Help: "Failed MySQL writes of a batch (each retry counts), by log.",
		}, []string{"log"}),
	}
}

// Collectors returns the bus's Prometheus collectors, for the process's
// registry: its NATS connection's state, the messages it published, the
// directory requests it served and its log writer's work.
func (b *Bus) Collectors() []prometheus.Collector {
	m := b.met
	return []prometheus.Collector{natsCollector{b.nc}, m.published, m.dirServed, m.dirSeconds,
		m.written, m.batch, m.lag, m.pending, m.writeErrs}
}

// Stats returns the process's per-tenant figures the stats requests are
// answered from ([Bus.ServeStats]); the bus counts its publishes there,
// and a UA its sessions, deliveries and round-trip times.
func (b *Bus) Stats() *stats.Book { return b.book }

// published counts a message stored in the stream.
func (b *Bus) published(t kaiwa.TenantID) {
	b.met.published.WithLabelValues(string(t)).Inc()
	b.book.Add(t, stats.Messages, 1)
}

// served counts a directory request answered.
func (m *metrics) served(op string, err error, began time.Time) {
	code := "ok"
	if err != nil {
		code = string(kaiwa.ErrorCode(err))
	}
	m.dirServed.WithLabelValues(op, code).Inc()
	m.dirSeconds.WithLabelValues(op).Observe(time.Since(began).Seconds())
}

// natsCollector reports the NATS connection's state when scraped.
type natsCollector struct{ nc *nats.Conn }

var (
	natsConnected  = prometheus.NewDesc("kaiwa_nats_connected", "1 while the process's NATS connection is up, else 0.", nil, nil)
	natsReconnects = prometheus.NewDesc("kaiwa_nats_reconnects_total", "Times the NATS connection was re-established.", nil, nil)
	natsPending    = prometheus.NewDesc("kaiwa_nats_pending_bytes", "Bytes buffered in the NATS connection, not yet sent (while disconnected: the reconnect buffer).", nil, nil)
	natsMsgs       = prometheus.NewDesc("kaiwa_nats_messages_total", "Messages through the NATS connection, by direction (in, out).", []string{"direction"}, nil)
	natsBytes      = prometheus.NewDesc("kaiwa_nats_bytes_total", "Bytes through the NATS connection, by direction (in, out).", []string{"direction"}, nil)
)

// Describe implements [prometheus.Collector].
func (natsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{natsConnected, natsReconnects, natsPending, natsMsgs, natsBytes} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c natsCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.nc.IsConnected() {
		up = 1
	}
	st := c.nc.Stats()
	buffered, err := c.nc.Buffered()
	if err != nil {
		buffered = 0
	}
	ch <- prometheus.MustNewConstMetric(natsConnected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(natsReconnects, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(natsPending, prometheus.GaugeValue, float64(buffered))
	ch <- prometheus.MustNewConstMetric(natsMsgs, prometheus.CounterValue, float64(st.InMsgs), "in")
	ch <- prometheus.MustNewConstMetric(natsMsgs, prometheus.CounterValue, float64(st.OutMsgs), "out")
	ch <- prometheus.MustNewConstMetric(natsBytes, prometheus.CounterValue, float64(st.InBytes), "in")
	ch <- prometheus.MustNewConstMetric(natsBytes, prometheus.CounterValue, float64(st.OutBytes), "out")
}

// watchPending keeps the log writer's pending gauges up to date every
// interval until ctx ends.
func (w *LogWriter) watchPending(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// The events wait in two streams: single events (the release
		// before's) and batches.
		pending := map[string]float64{}
		failed := map[string]bool{} // a consumer of the log did not answer
		for _, c := range []struct{ log, stream, consumer string }{
			{"messages", w.Bus.cfg.Stream, MessageLogConsumer},
			{"events", w.Bus.cfg.EventStream, EventLogConsumer},
			{"events", w.Bus.cfg.EventBatchStream, EventBatchLogConsumer},
		} {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var info *jetstream.ConsumerInfo
			cons, err := w.Bus.js.Consumer(qctx, c.stream, c.consumer)
			if err == nil {
				info, err = cons.Info(qctx)
			}
			cancel()
			if err != nil {
				failed[c.log] = true
				continue
			}
			pending[c.log] += float64(info.NumPending + uint64(info.NumAckPending))
		}
		for log, n := range pending {
			if !failed[log] {
				w.Bus.met.pending.WithLabelValues(log).Set(n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
