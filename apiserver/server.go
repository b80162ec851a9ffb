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
	// DefaultPageLimit is the number of messages a log query returns when
	// the request names no limit.
	DefaultPageLimit = 50
	// DefaultMaxPageLimit is the largest limit a log query may ask for.
	DefaultMaxPageLimit = 500
	// DefaultReadyTimeout bounds one call of [Config.Ready].
	DefaultReadyTimeout = 2 * time.Second
)

// Config holds every dependency of the API server. The stores and the bus
// are required; the tunables take their defaults when zero.
type Config struct {
	// Tenants authenticates API keys and reads tenant settings.
	Tenants kaiwa.TenantStore
	// Tokens issues and revokes user tokens.
	Tokens kaiwa.TokenStore
	// Channels keeps channels and their membership.
	Channels kaiwa.ChannelStore
	// Log is the message log the history calls read.
	Log kaiwa.MessageLog
	// Bus publishes system messages and live changes.
	Bus kaiwa.Publisher

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
	// PageLimit is the default page size of log queries ([DefaultPageLimit]).
	PageLimit int
	// MaxPageLimit is the largest page size of log queries
	// ([DefaultMaxPageLimit]).
	MaxPageLimit int
	// ReadyTimeout bounds one call of Ready ([DefaultReadyTimeout]).
	ReadyTimeout time.Duration
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
	case !kaiwa.ValidID(cfg.Version):
		panic("apiserver: Config.Version is not a valid path segment: " + cfg.Version)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	addRoutes(e, cfg)
	return e
}
