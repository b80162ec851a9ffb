package apiserver

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// tokenRequest is the body of POST /tokens.
type tokenRequest struct {
	User       string   `json:"user"`
	Name       string   `json:"name"`
	TTLSeconds int64    `json:"ttl_seconds"`
	Join       []string `json:"join"`
	Publish    []string `json:"publish"`
}

// tokenResponse is the answer to POST /tokens.
type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// handleIssueToken issues a user token ([kaiwa.Core.IssueToken]):
// POST /tokens.
func handleIssueToken(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body tokenRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		issued, err := core.IssueToken(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), kaiwa.TokenRequest{
			User:    body.User,
			Name:    body.Name,
			TTL:     seconds(body.TTLSeconds),
			Join:    body.Join,
			Publish: body.Publish,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, tokenResponse{
			Token:     issued.Token,
			ExpiresAt: issued.ExpiresAt.UTC().Format(time.RFC3339),
		})
	}
}

// seconds converts a count of seconds to a duration, saturating instead of
// overflowing so that range checks see huge values as huge.
func seconds(n int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Second)
	switch {
	case n > limit:
		return math.MaxInt64
	case n < -limit:
		return math.MinInt64
	}
	return time.Duration(n) * time.Second
}

// handleRevokeTokens revokes every token of a user and closes the user's
// live sessions ([kaiwa.Core.RevokeTokens]): DELETE /users/{user}/tokens.
func handleRevokeTokens(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		if _, err := core.RevokeTokens(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), user); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
