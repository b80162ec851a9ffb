package apiserver

import (
	"fmt"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// tenantKey is the echo context key of the authenticated tenant.
const tenantKey = "kaiwa.tenant"

// requireAPIKey authenticates the request's bearer API key and stores the
// tenant it belongs to in the context; see [tenantOf].
func requireAPIKey(tenants kaiwa.TenantStore) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok {
				return kaiwa.Errorf(kaiwa.CodeUnauthorized, "missing API key: send the header Authorization: Bearer API_KEY")
			}
			// A key that cannot be one is refused without a lookup.
			if _, ok := kaiwa.CredentialTenant(key); !ok {
				return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid API key")
			}
			tenant, err := tenants.AuthenticateKey(c.Request().Context(), key)
			if err != nil {
				if kaiwa.IsCode(err, kaiwa.CodeUnauthorized) || kaiwa.IsCode(err, kaiwa.CodeNotFound) {
					return kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid API key")
				}
				return fmt.Errorf("authenticate api key: %w", err)
			}
			if !kaiwa.ValidID(string(tenant)) {
				return fmt.Errorf("authenticate api key: store returned tenant id %q", tenant)
			}
			c.Set(tenantKey, tenant)
			return next(c)
		}
	}
}

// bearer returns the credential of an "Authorization: Bearer X" header. The
// scheme is case-insensitive.
func bearer(header string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// tenantOf returns the tenant [requireAPIKey] authenticated. Every handler
// confines itself to it.
func tenantOf(c echo.Context) kaiwa.TenantID {
	t, ok := c.Get(tenantKey).(kaiwa.TenantID)
	if !ok || t == "" {
		// A route registered outside the authenticated group: a wiring bug,
		// recovered and answered as an internal error.
		panic("apiserver: route " + c.Path() + " has no authenticated tenant")
	}
	return t
}
