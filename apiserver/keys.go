package apiserver

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// keyJSON describes one API key of the tenant; the key itself is never
// shown again after it was made.
type keyJSON struct {
	ID         int64  `json:"id"`
	CreatedAt  string `json:"created_at"`
	LastUsedAt string `json:"last_used_at,omitempty"`
	RevokedAt  string `json:"revoked_at,omitempty"`
}

// keysResponse answers GET /keys.
type keysResponse struct {
	Keys []keyJSON `json:"keys"`
}

// newKeyResponse answers POST /keys.
type newKeyResponse struct {
	Key string `json:"key"`
}

// handleListKeys lists the tenant's API keys, revoked ones included:
// GET /keys.
func handleListKeys(tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		keys, err := tenants.APIKeys(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		out := keysResponse{Keys: make([]keyJSON, 0, len(keys))}
		for _, k := range keys {
			j := keyJSON{ID: k.ID, CreatedAt: rfc3339(k.CreatedAt)}
			if !k.LastUsedAt.IsZero() {
				j.LastUsedAt = rfc3339(k.LastUsedAt)
			}
			if !k.RevokedAt.IsZero() {
				j.RevokedAt = rfc3339(k.RevokedAt)
			}
			out.Keys = append(out.Keys, j)
		}
		return c.JSON(http.StatusOK, out)
	}
}

// handleAddKey makes another API key for the tenant and returns it, once:
// POST /keys. Existing keys stay valid until revoked, so a game server can
// switch keys without downtime.
func handleAddKey(tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		key, err := tenants.RotateKey(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, newKeyResponse{Key: key})
	}
}

// handleRevokeKey revokes one of the tenant's API keys: DELETE /keys/{id}.
// The key making the call may revoke itself; the last active key may not
// be revoked.
func handleRevokeKey(tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "a key id is a positive integer")
		}
		if err := tenants.RevokeKey(c.Request().Context(), tenantOf(c), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
