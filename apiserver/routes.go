package apiserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// openAPIPath is the one route under the version prefix that needs no key:
// the API's own description.
const openAPIPath = "/openapi.json"

// addRoutes lists every route of the API, once, with the middleware that
// guards them. openAPI is the document served at [openAPIPath].
func addRoutes(e *echo.Echo, cfg Config, openAPI []byte) {
	prefix := "/" + cfg.Version + "/api"
	rates := newTenantLimits(cfg.Tenants, cfg.RateRefresh, cfg.RateTenants)
	// Before routing, so that unknown routes and wrong methods under the
	// prefix need a key too, and 405 is told apart from 404. The rate
	// limit follows authentication: it is per tenant.
	e.Pre(
		newMetrics(cfg.Registry).observe,
		recoverPanics,
		noStore,
		underPrefix(prefix, []string{prefix + openAPIPath},
			deadline(cfg.RequestTimeout, map[string]time.Duration{prefix + "/ngwords": cfg.BulkTimeout}),
			requireAPIKey(cfg.Tenants),
			limitRate(rates),
			limitBody(cfg.BodyLimit, map[string]int64{
				prefix + "/ngwords":        cfg.NGBodyLimit,
				prefix + "/messages/batch": max(cfg.BodyLimit, BatchBodyLimit),
			}),
		),
	)

	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(cfg.Ready, cfg.ReadyTimeout))
	e.GET("/metrics", handleMetrics(cfg.Registry))
	if cfg.Console != nil {
		e.Any("/console", echo.WrapHandler(cfg.Console))
		e.Any("/console/*", echo.WrapHandler(cfg.Console))
	}

	api := e.Group(prefix)
	limits := pageLimits{Default: cfg.PageLimit, Max: cfg.MaxPageLimit}

	api.GET(openAPIPath, handleOpenAPI(openAPI))

	api.POST("/tokens", handleIssueToken(cfg.Core))
	api.DELETE("/users/:user/tokens", handleRevokeTokens(cfg.Core))
	api.DELETE("/tokens/:jti", handleRevokeTokenID(cfg.Core))
	api.GET("/signing-keys", handleListSigningKeys(cfg.Signing))
	api.POST("/signing-keys", handleAddSigningKey(cfg.Core))
	api.DELETE("/signing-keys/:kid", handleDeleteSigningKey(cfg.Core))

	api.PUT("/channels/:ch", handlePutChannel(cfg.Core))
	api.DELETE("/channels/:ch", handleDeleteChannel(cfg.Core))

	api.GET("/channels/:ch/members", handleListMembers(cfg.Channels))
	api.GET("/channels/:ch/presence", handleChannelPresence(cfg.Presence, cfg.Tenants))
	api.GET("/users/:user/online", handleUserOnline(cfg.Presence))
	api.PUT("/channels/:ch/members/:user", handleAddMember(cfg.Core))
	api.DELETE("/channels/:ch/members/:user", handleRemoveMember(cfg.Core))

	api.POST("/channels/:ch/messages", handlePostMessage(cfg.Core))
	api.GET("/channels/:ch/messages", handleListMessages(cfg.Log, limits))
	api.DELETE("/channels/:ch/messages/:id", handleDeleteMessage(cfg.Core))
	api.POST("/users/:user/messages", handlePostUserMessage(cfg.Core))
	api.POST("/messages", handleBroadcast(cfg.Core))
	api.POST("/messages/batch", handlePostBatch(cfg.Core, rates))
	api.GET("/messages", handleListAllMessages(cfg.Log, limits))
	api.GET("/messages/search", handleSearchMessages(cfg.Core, limits))
	api.GET("/channels/:ch/messages/:id/edits", handleListEdits(cfg.Core))
	api.PUT("/users/:user/blocks/:other", handleBlock(cfg.Core, false))
	api.DELETE("/users/:user/blocks/:other", handleBlock(cfg.Core, true))
	api.GET("/users/:user/blocks", handleListBlocks(cfg.Core))
	api.GET("/users/:user/cursors", handleListCursors(cfg.Core))

	api.GET("/ngwords", handleGetNGWords(cfg.NG))
	api.PUT("/ngwords", handlePutNGWords(cfg.Core))
	api.POST("/ngwords", handleAddNGWords(cfg.Core))
	api.DELETE("/ngwords/:word", handleDeleteNGWord(cfg.Core))

	api.POST("/users/:user/kick", handleKick(cfg.Core))
	api.PUT("/users/:user/ban", handleSanction(cfg.Core, kaiwa.SanctionBan))
	api.DELETE("/users/:user/ban", handleLift(cfg.Core, kaiwa.SanctionBan))
	api.PUT("/users/:user/mute", handleSanction(cfg.Core, kaiwa.SanctionMute))
	api.DELETE("/users/:user/mute", handleLift(cfg.Core, kaiwa.SanctionMute))
	api.GET("/users/:user/sanctions", handleListSanctions(cfg.Sanctions))

	api.GET("/events", handleListEvents(cfg.Events, limits))

	api.GET("/keys", handleListKeys(cfg.Tenants))
	api.POST("/keys", handleAddKey(cfg.Core))
	api.DELETE("/keys/:id", handleRevokeKey(cfg.Core))

	api.GET("/settings", handleGetSettings(cfg.Tenants))
	api.GET("/before-send", handleGetBeforeSend(cfg.Tenants))
	api.PUT("/before-send", handlePutBeforeSend(cfg.Core))

	api.POST("/webhooks", handleAddWebhook(cfg.Core))
	api.GET("/webhooks", handleListWebhooks(cfg.Webhooks))
	api.DELETE("/webhooks/:id", handleDeleteWebhook(cfg.Core))
	api.GET("/webhooks/:id/deliveries", handleListDeliveries(cfg.Webhooks))

	api.GET("/stats", handleStats(cfg.Stats))
}

// underPrefix applies middleware m only to requests whose path, as the
// router sees it, is prefix or below it, except the paths listed in public.
func underPrefix(prefix string, public []string, m ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		guarded := next
		for i := len(m) - 1; i >= 0; i-- {
			guarded = m[i](guarded)
		}
		return func(c echo.Context) error {
			p := echo.GetPath(c.Request())
			if p != prefix && !strings.HasPrefix(p, prefix+"/") {
				return next(c)
			}
			for _, pub := range public {
				if p == pub {
					return next(c)
				}
			}
			return guarded(c)
		}
	}
}

// deadline bounds the work of a call, key check included: its context
// ends after d (or the path's own bound in perPath), so a database or bus
// that does not answer makes the call fail with 503 unavailable in time
// instead of hanging.
func deadline(d time.Duration, perPath map[string]time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			d := d
			if pd, ok := perPath[echo.GetPath(req)]; ok {
				d = pd
			}
			ctx, cancel := context.WithTimeout(req.Context(), d)
			c.SetRequest(req.WithContext(ctx))
			defer func() {
				// The error handler sees the call's own context, which
				// ends only when the client goes away (even after a panic).
				c.SetRequest(req)
				cancel()
			}()
			err := next(c)
			if err != nil && ctx.Err() == context.DeadlineExceeded && !kaiwa.IsCode(err, kaiwa.CodeUnavailable) && kaiwa.ErrorCode(err) == kaiwa.CodeInternal {
				return fmt.Errorf("%w: %w", kaiwa.Errorf(kaiwa.CodeUnavailable, "the call took longer than %s; try again", d), err)
			}
			return err
		}
	}
}
