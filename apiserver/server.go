package apiserver

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaiwa-chat/kaiwa"
)

// Defaults of the [Config] tunables.
const (
	// DefaultBodyLimit is the largest request body accepted, in bytes.
	DefaultBodyLimit = 64 << 10
	// DefaultNGBodyLimit is the largest body of PUT and POST /ngwords, in
	// bytes: room for a long NG list in one call.
	DefaultNGBodyLimit = 4 << 20
	// BatchBodyLimit is the largest body of POST /messages/batch, in bytes
	// (never below the Config's BodyLimit): room for [kaiwa.MaxBatch]
	// messages of a few KB each.
	BatchBodyLimit = 1 << 20
	// DefaultPageLimit is the number of messages a log query returns when
	// the request names no limit.
	DefaultPageLimit = 50
	// DefaultMaxPageLimit is the largest limit a log query may ask for.
	DefaultMaxPageLimit = 500
	// DefaultReadyTimeout bounds one call of [Config.Ready].
	DefaultReadyTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds a call's work (its database and bus
	// calls): past it the call answers 503 unavailable instead of hanging
	// on a database that does not answer.
	DefaultRequestTimeout = 1500 * time.Millisecond
	// DefaultBulkTimeout is the bound of the NG-list calls, whose bodies
	// may be large.
	DefaultBulkTimeout = 15 * time.Second
	// DefaultRateRefresh is how long the rate limiter uses a tenant's
	// APIRate and APIBurst before reading its settings again.
	DefaultRateRefresh = 5 * time.Second
	// DefaultRateTenants bounds the tenants whose rate limiter state the
	// server keeps at once.
	DefaultRateTenants = 10000
)

// Config holds every dependency of the API server. The core, the stores
// and the event log are required; the tunables take their defaults when
// zero.
type Config struct {
	// Core makes every change a call asks for: it checks it, stores it,
	// publishes the live change and records the event. Calls that change
	// nothing read the stores below.
	Core *kaiwa.Core
	// Tenants authenticates API keys, reads tenant settings (the rate
	// limit's too) and lists the tenant's API keys.
	Tenants kaiwa.TenantStore
	// Channels lists channels' members.
	Channels kaiwa.ChannelStore
	// Log is the message log the history calls read: it may be a MySQL
	// replica's (kaiwa api --mysql-read-dsn), so that reading logs never
	// loads the primary the log writers write to.
	Log kaiwa.MessageLog
	// NG reads the tenants' NG-word lists.
	NG kaiwa.NGStore
	// Sanctions reads the bans and mutes in force.
	Sanctions kaiwa.ModerationStore
	// Events is the event log the GET /events call reads (a replica's, as
	// Log may be).
	Events kaiwa.EventLog
	// Stats gathers a tenant's health from every process for GET /stats.
	// Nil answers it 503 unavailable.
	Stats kaiwa.StatsSource
	// Registry receives the server's metrics and is served at /metrics
	// with whatever else the process registered there. Nil means a
	// registry of the server's own.
	Registry *prometheus.Registry
	// Console, when not nil, is served under /console/: the tenants'
	// operators' web console.
	Console http.Handler
	// Signing lists the tenants' signing keys.
	Signing kaiwa.SigningStore
	// Webhooks lists the tenants' webhooks and their deliveries.
	Webhooks kaiwa.WebhookStore
	// Presence asks the UAs who is online; nil answers unavailable.
	Presence Presence

	// Version is the API version served, "v1" when empty; the calls are
	// mounted under "/" + Version + "/api".
	Version string
	// Ready reports whether the server can do useful work (database and
	// bus reachable); /readyz answers 503 while it returns an error. Nil
	// means always ready.
	Ready func(ctx context.Context) error
	// Logger receives internal errors. Nil discards them.
	Logger *slog.Logger

	// BodyLimit is the largest request body in bytes ([DefaultBodyLimit]).
	BodyLimit int64
	// NGBodyLimit is the largest body of the NG-list calls in bytes
	// ([DefaultNGBodyLimit]); never below BodyLimit.
	NGBodyLimit int64
	// PageLimit is the default page size of log queries ([DefaultPageLimit]).
	PageLimit int
	// MaxPageLimit is the largest page size of log queries
	// ([DefaultMaxPageLimit]).
	MaxPageLimit int
	// ReadyTimeout bounds one call of Ready ([DefaultReadyTimeout]).
	ReadyTimeout time.Duration
	// RequestTimeout bounds each call's work ([DefaultRequestTimeout]);
	// BulkTimeout that of the NG-list calls ([DefaultBulkTimeout]).
	RequestTimeout time.Duration
	BulkTimeout    time.Duration
	// RateRefresh is how long a tenant's API rate and burst are used
	// before its settings are read again ([DefaultRateRefresh]).
	RateRefresh time.Duration
	// RateTenants bounds the tenants whose rate limiter state is kept at
	// once ([DefaultRateTenants]); the idlest are forgotten first.
	RateTenants int
}

func (cfg Config) withDefaults() Config {
	if cfg.Version == "" {
		cfg.Version = "v1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.NGBodyLimit <= 0 {
		cfg.NGBodyLimit = DefaultNGBodyLimit
	}
	if cfg.NGBodyLimit < cfg.BodyLimit {
		cfg.NGBodyLimit = cfg.BodyLimit
	}
	if cfg.PageLimit <= 0 {
		cfg.PageLimit = DefaultPageLimit
	}
	if cfg.MaxPageLimit <= 0 {
		cfg.MaxPageLimit = DefaultMaxPageLimit
	}
	if cfg.PageLimit > cfg.MaxPageLimit {
		cfg.PageLimit = cfg.MaxPageLimit
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.BulkTimeout <= 0 {
		cfg.BulkTimeout = DefaultBulkTimeout
	}
	if cfg.RateRefresh <= 0 {
		cfg.RateRefresh = DefaultRateRefresh
	}
	if cfg.RateTenants <= 0 {
		cfg.RateTenants = DefaultRateTenants
	}
	return cfg
}

// NewServer returns the handler of the tenant API described by cfg. It
// panics when a required dependency is missing or the version is not a
// valid path segment: both are wiring mistakes, not runtime conditions.
//
// The handler is safe for concurrent use.
func NewServer(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Core == nil:
		panic("apiserver: Config.Core is nil")
	case missingCoreDependency(cfg.Core) != "":
		panic("apiserver: Config.Core." + missingCoreDependency(cfg.Core) + " is nil")
	case cfg.Tenants == nil:
		panic("apiserver: Config.Tenants is nil")
	case cfg.Channels == nil:
		panic("apiserver: Config.Channels is nil")
	case cfg.Log == nil:
		panic("apiserver: Config.Log is nil")
	case cfg.NG == nil:
		panic("apiserver: Config.NG is nil")
	case cfg.Sanctions == nil:
		panic("apiserver: Config.Sanctions is nil")
	case cfg.Events == nil:
		panic("apiserver: Config.Events is nil")
	case !kaiwa.ValidID(cfg.Version):
		panic("apiserver: Config.Version is not a valid path segment: " + cfg.Version)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	addRoutes(e, cfg, openAPIFor(cfg.Version))
	return e
}

// missingCoreDependency names a dependency of the core that the API's
// calls need and that is missing, or returns "".
func missingCoreDependency(c *kaiwa.Core) string {
	for _, d := range []struct {
		name    string
		missing bool
	}{
		{"Tenants", c.Tenants == nil}, {"Tokens", c.Tokens == nil}, {"Channels", c.Channels == nil},
		{"Log", c.Log == nil}, {"NG", c.NG == nil}, {"Sanctions", c.Sanctions == nil},
		{"Bus", c.Bus == nil}, {"Events", c.Events == nil},
	} {
		if d.missing {
			return d.name
		}
	}
	return ""
}
