package apiserver

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// Defaults of the [Config] tunables.
const (
	// DefaultBodyLimit is the largest request body accepted, in bytes.
	DefaultBodyLimit = 64 << 10
	// DefaultNGBodyLimit is the largest body of PUT and POST /ngwords, in
	// bytes: room for a long NG list in one call.
	DefaultNGBodyLimit = 4 << 20
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

// Config holds every dependency of the API server. The stores, the bus and
// the event recorder are required; the tunables take their defaults when
// zero.
type Config struct {
	// Tenants authenticates API keys, reads tenant settings and manages
	// the tenant's API keys.
	Tenants kaiwa.TenantStore
	// Tokens issues and revokes user tokens.
	Tokens kaiwa.TokenStore
	// Channels keeps channels and their membership.
	Channels kaiwa.ChannelStore
	// Log is the message log the history calls read and deletions change.
	Log kaiwa.MessageLog
	// Bus publishes system messages and live changes, and deletes
	// messages from the stream's history.
	Bus kaiwa.Publisher
	// NG keeps the tenants' NG-word lists.
	NG kaiwa.NGStore
	// Moderation kicks, bans and mutes users live (a [kaiwa.Moderator]).
	Moderation kaiwa.Moderation
	// Sanctions reads the bans and mutes in force.
	Sanctions kaiwa.ModerationStore
	// Events is the event log the GET /events call reads.
	Events kaiwa.EventLog
	// Recorder records the events the API causes (system messages, token
	// revocations, message deletions, NG-list changes).
	Recorder kaiwa.Recorder

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
	case cfg.Tenants == nil:
		panic("apiserver: Config.Tenants is nil")
	case cfg.Tokens == nil:
		panic("apiserver: Config.Tokens is nil")
	case cfg.Channels == nil:
		panic("apiserver: Config.Channels is nil")
	case cfg.Log == nil:
		panic("apiserver: Config.Log is nil")
	case cfg.Bus == nil:
		panic("apiserver: Config.Bus is nil")
	case cfg.NG == nil:
		panic("apiserver: Config.NG is nil")
	case cfg.Moderation == nil:
		panic("apiserver: Config.Moderation is nil")
	case cfg.Sanctions == nil:
		panic("apiserver: Config.Sanctions is nil")
	case cfg.Events == nil:
		panic("apiserver: Config.Events is nil")
	case cfg.Recorder == nil:
		panic("apiserver: Config.Recorder is nil")
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
