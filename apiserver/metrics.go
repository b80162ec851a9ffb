package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaiwa-chat/kaiwa"
)

// metrics are the API server's Prometheus metrics. Routes are labelled by
// their template (/v1/api/channels/:ch), never a channel or user.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	tenants  *prometheus.CounterVec
	limited  *prometheus.CounterVec
}

// newMetrics makes the server's metrics and registers them with reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_api_requests_total", Help: "Requests answered, by route template, method and HTTP status.",
		}, []string{"route", "method", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kaiwa_api_request_seconds",
			Help:    "Time to answer a request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}, []string{"route", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_api_errors_total", Help: "Error answers, by error code.",
		}, []string{"code"}),
		tenants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_api_tenant_requests_total", Help: "Requests with a valid API key, by tenant.",
		}, []string{"tenant"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kaiwa_api_rate_limited_total", Help: "Calls refused for the tenant's API rate (429), by tenant.",
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.requests, m.seconds, m.errors, m.tenants, m.limited)
	return m
}

// observe counts every request, by the route it was routed to ("other"
// when it was refused before routing or matched none) and the status it is
// answered with.
func (m *metrics) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		began := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			var code kaiwa.Code
			status, code, _ = describe(err)
			m.errors.WithLabelValues(string(code)).Inc()
			if t, ok := c.Get(tenantKey).(kaiwa.TenantID); ok && code == kaiwa.CodeRateLimited {
				m.limited.WithLabelValues(string(t)).Inc()
			}
		}
		route := c.Path()
		if route == "" || route == "/*" {
			route = "other"
		}
		method := c.Request().Method
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.seconds.WithLabelValues(route, method).Observe(time.Since(began).Seconds())
		if t, ok := c.Get(tenantKey).(kaiwa.TenantID); ok {
			m.tenants.WithLabelValues(string(t)).Inc()
		}
		return err
	}
}

// handleMetrics serves the process's metrics: GET /metrics, on the API's
// own socket (nginx routes only /{version}/api/ and /console/ here).
func handleMetrics(g prometheus.Gatherer) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// handleStats answers the calling tenant's health, gathered from every
// process: GET /stats.
func handleStats(src kaiwa.StatsSource) echo.HandlerFunc {
	return func(c echo.Context) error {
		if src == nil {
			return kaiwa.Errorf(kaiwa.CodeUnavailable, "stats are not served by this process")
		}
		st, err := src.TenantStats(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, st)
	}
}
