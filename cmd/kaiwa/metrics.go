package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaiwa-chat/kaiwa/bus"
)

// metricsListen defines the --metrics-listen flag of a server process.
func metricsListen(f envFlags) *string {
	return f.str("metrics-listen", "KAIWA_METRICS_LISTEN", "",
		`also serve GET /metrics (and Go's profiles at /debug/pprof/) on this TCP address for Prometheus and operators ("127.0.0.1:9101"); empty: only on --listen`)
}

// processRegistry returns a registry with the process's own metrics (Go
// runtime, process) and its bus's (NATS connection, directory, log
// writer).
func processRegistry(b *bus.Bus) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(b.Collectors()...)
	return reg
}

// serveMetrics serves h at /metrics, and the process's profiles at
// /debug/pprof/, on addr (nothing when addr is empty) until ctx is done.
// It fails at once when addr cannot be listened on. The address is the
// operators' own, never the clients'.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "addr", addr, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics", "addr", addr)
	return nil
}

// gathered is the /metrics handler of a registry.
func gathered(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
