package apiserver

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// signingKeyRequest is the body of POST /signing-keys: an HS256 secret, or
// the PEM public key of an EdDSA or ES256 key.
type signingKeyRequest struct {
	Kid       string `json:"kid"`
	Alg       string `json:"alg"`
	Secret    string `json:"secret"`
	PublicKey string `json:"public_key"`
}

// signingKeyJSON describes a signing key; a secret is never shown.
type signingKeyJSON struct {
	Kid       string `json:"kid"`
	Alg       string `json:"alg"`
	PublicKey string `json:"public_key,omitempty"`
	CreatedAt string `json:"created_at"`
}

func signingKeyOf(k kaiwa.SigningKey) signingKeyJSON {
	return signingKeyJSON{Kid: k.Kid, Alg: k.Alg, PublicKey: k.PublicKey, CreatedAt: rfc3339(k.CreatedAt)}
}

// handleListSigningKeys lists the tenant's signing keys: GET /signing-keys.
func handleListSigningKeys(store kaiwa.SigningStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		keys, err := store.SigningKeys(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		out := make([]signingKeyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, signingKeyOf(k))
		}
		return c.JSON(http.StatusOK, map[string]any{"keys": out})
	}
}

// handleAddSigningKey registers a signing key ([kaiwa.Core.AddSigningKey]):
// POST /signing-keys.
func handleAddSigningKey(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body signingKeyRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		k, err := core.AddSigningKey(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), kaiwa.SigningKey{
			Kid: body.Kid, Alg: body.Alg, Secret: []byte(body.Secret), PublicKey: body.PublicKey,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, signingKeyOf(k))
	}
}

// handleDeleteSigningKey removes a signing key
// ([kaiwa.Core.DeleteSigningKey]): DELETE /signing-keys/{kid}.
func handleDeleteSigningKey(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		kid, err := pathParam(c, "kid")
		if err != nil {
			return err
		}
		if err := core.DeleteSigningKey(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), kid); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleRevokeTokenID revokes one signed token by its id
// ([kaiwa.Core.RevokeTokenID]): DELETE /tokens/{jti}.
func handleRevokeTokenID(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		jti, err := pathParam(c, "jti")
		if err != nil {
			return err
		}
		if err := core.RevokeTokenID(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), jti); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
