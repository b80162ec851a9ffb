package apiserver

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// Presence asks every UA who is online (the bus does).
type Presence interface {
	// ChannelPresence returns who is online in a channel, users past
	// limit counted only.
	ChannelPresence(ctx context.Context, t kaiwa.TenantID, ch string, limit int) (kaiwa.ChannelPresence, error)
	// UserOnline returns whether a user has live sessions (counted when
	// count is set).
	UserOnline(ctx context.Context, t kaiwa.TenantID, user string, count bool) (kaiwa.UserPresence, error)
}

// handleChannelPresence answers who is online in a channel, across every
// UA: GET /channels/{ch}/presence.
func handleChannelPresence(p Presence, tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		if p == nil {
			return kaiwa.Errorf(kaiwa.CodeUnavailable, "presence is not served here")
		}
		ctx := c.Request().Context()
		st, err := tenants.TenantSettings(ctx, tenantOf(c))
		if err != nil {
			return err
		}
		out, err := p.ChannelPresence(ctx, tenantOf(c), ch, st.WithDefaults().PresenceLimit)
		if err != nil {
			return err
		}
		if out.Users == nil && out.Count <= st.WithDefaults().PresenceLimit {
			out.Users = []kaiwa.PresenceUser{}
		}
		return c.JSON(http.StatusOK, out)
	}
}

// handleUserOnline answers whether a user has live sessions, and how
// many, across every UA: GET /users/{user}/online.
func handleUserOnline(p Presence) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		if p == nil {
			return kaiwa.Errorf(kaiwa.CodeUnavailable, "presence is not served here")
		}
		out, err := p.UserOnline(c.Request().Context(), tenantOf(c), user, true)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	}
}
