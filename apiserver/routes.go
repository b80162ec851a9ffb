package apiserver

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// addRoutes lists every route of the API, once, with the middleware that
// guards them.
func addRoutes(e *echo.Echo, cfg Config) {
	prefix := "/" + cfg.Version + "/api"
	// Before routing, so that unknown routes and wrong methods under the
	// prefix need a key too, and 405 is told apart from 404.
	e.Pre(
		recoverPanics,
		noStore,
		underPrefix(prefix, requireAPIKey(cfg.Tenants), limitBody(cfg.BodyLimit)),
	)

	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(cfg.Ready, cfg.ReadyTimeout))

	api := e.Group(prefix)
	limits := pageLimits{Default: cfg.PageLimit, Max: cfg.MaxPageLimit}

	api.POST("/tokens", handleIssueToken(cfg.Tokens))
	api.DELETE("/users/:user/tokens", handleRevokeTokens(cfg.Tokens, cfg.Bus))

	api.PUT("/channels/:ch", handlePutChannel(cfg.Channels))
	api.DELETE("/channels/:ch", handleDeleteChannel(cfg.Channels, cfg.Bus))

	api.GET("/channels/:ch/members", handleListMembers(cfg.Channels))
	api.PUT("/channels/:ch/members/:user", handleAddMember(cfg.Channels, cfg.Bus))
	api.DELETE("/channels/:ch/members/:user", handleRemoveMember(cfg.Channels, cfg.Bus))

	api.POST("/channels/:ch/messages", handlePostMessage(cfg.Channels, cfg.Tenants, cfg.Bus))
	api.GET("/channels/:ch/messages", handleListMessages(cfg.Log, limits))
}

// underPrefix applies middleware m only to requests whose path, as the
// router sees it, is prefix or below it.
func underPrefix(prefix string, m ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		guarded := next
		for i := len(m) - 1; i >= 0; i-- {
			guarded = m[i](guarded)
		}
		return func(c echo.Context) error {
			p := echo.GetPath(c.Request())
			if p == prefix || strings.HasPrefix(p, prefix+"/") {
				return guarded(c)
			}
			return next(c)
		}
	}
}
