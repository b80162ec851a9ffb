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

// handleAddKey makes another API key for the tenant and returns it, once
// ([kaiwa.Core.AddKey]): POST /keys.
func handleAddKey(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		key, err := core.AddKey(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, newKeyResponse{Key: key})
	}
}

// handleRevokeKey revokes one of the tenant's API keys
// ([kaiwa.Core.RevokeKey]): DELETE /keys/{id}.
func handleRevokeKey(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "a key id is a positive integer")
		}
		if err := core.RevokeKey(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
