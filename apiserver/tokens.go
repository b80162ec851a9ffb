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

// handleIssueToken issues a user token: POST /tokens.
func handleIssueToken(tokens kaiwa.TokenStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body tokenRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		req := kaiwa.TokenRequest{
			User:    body.User,
			Name:    body.Name,
			TTL:     seconds(body.TTLSeconds),
			Join:    body.Join,
			Publish: body.Publish,
		}
		if req.Name == "" {
			req.Name = req.User
		}
		if err := req.Check(); err != nil {
			return err
		}
		issued, err := tokens.IssueToken(c.Request().Context(), tenantOf(c), req)
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
// live sessions: DELETE /users/{user}/tokens.
func handleRevokeTokens(tokens kaiwa.TokenStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		n, err := tokens.RevokeTokens(ctx, tenant, user)
		if err != nil {
			return err
		}
		record(rec, tenant, kaiwa.EventTokenRevoked, user, "", map[string]any{"tokens": n})
		// Published even when no token was left, so that a retry after a
		// failed publish still closes the sessions.
		err = bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlTokensRevoked, Tenant: tenant, User: user})
		if err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
