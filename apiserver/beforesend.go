package apiserver

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// withoutSecrets returns b with its hooks' secrets left out.
func withoutSecrets(b kaiwa.BeforeSend) kaiwa.BeforeSend {
	b.Hooks = slices.Clone(b.Hooks)
	for i := range b.Hooks {
		b.Hooks[i].Secret = ""
	}
	if b.Hooks == nil {
		b.Hooks = []kaiwa.BeforeSendHook{}
	}
	return b
}

// handleGetBeforeSend returns the tenant's before-send hooks, without
// their secrets: GET /before-send.
func handleGetBeforeSend(tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := tenants.TenantSettings(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, withoutSecrets(s.WithDefaults().BeforeSend))
	}
}

// handlePutBeforeSend replaces the tenant's before-send hooks
// ([kaiwa.Core.SetBeforeSend]): PUT /before-send.
func handlePutBeforeSend(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body kaiwa.BeforeSend
		if err := bind(c, &body); err != nil {
			return err
		}
		if err := core.SetBeforeSend(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), body); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
