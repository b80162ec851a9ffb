package apiserver

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// kickRequest is the optional body of POST /users/{user}/kick.
type kickRequest struct {
	Reason string `json:"reason"`
}

// sanctionRequest is the optional body of PUT /users/{user}/ban and
// PUT /users/{user}/mute. A zero Until lasts until lifted.
type sanctionRequest struct {
	Until  timeValue `json:"until"`
	Reason string    `json:"reason"`
}

// sanctionJSON is a ban or mute as the API shows it.
type sanctionJSON struct {
	User      string             `json:"user"`
	Kind      kaiwa.SanctionKind `json:"kind"`
	Until     string             `json:"until,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	CreatedAt string             `json:"created_at"`
}

// sanctionsResponse answers GET /users/{user}/sanctions.
type sanctionsResponse struct {
	Sanctions []sanctionJSON `json:"sanctions"`
}

func toSanctionJSON(s kaiwa.Sanction) sanctionJSON {
	out := sanctionJSON{User: s.User, Kind: s.Kind, Reason: s.Reason, CreatedAt: rfc3339(s.CreatedAt)}
	if !s.Until.IsZero() {
		out.Until = rfc3339(s.Until)
	}
	return out
}

// rfc3339 formats a time of a response: RFC 3339 in UTC, to the second.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// handleKick closes a user's live sessions (close code 4003, with the
// reason); the user may reconnect: POST /users/{user}/kick.
func handleKick(mod kaiwa.Moderation) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		var body kickRequest
		if err := bindOptional(c, &body); err != nil {
			return err
		}
		if err := mod.Kick(c.Request().Context(), tenantOf(c), user, body.Reason); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleSanction bans or mutes a user until a time, replacing a sanction
// of the same kind: PUT /users/{user}/ban and PUT /users/{user}/mute. It
// answers with the sanction as stored.
func handleSanction(mod kaiwa.Moderation, store kaiwa.ModerationStore, kind kaiwa.SanctionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		var body sanctionRequest
		if err := bindOptional(c, &body); err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		s := kaiwa.Sanction{Tenant: tenant, User: user, Kind: kind, Until: body.Until.Time, Reason: body.Reason}
		if err := mod.Sanction(ctx, s); err != nil {
			return err
		}
		// The stored sanction carries the time it was made. Should it be
		// gone already (lifted or run out meanwhile), the one asked for is
		// shown.
		s.CreatedAt = time.Now()
		inForce, err := store.Sanctions(ctx, tenant, user)
		if err != nil {
			return err
		}
		for _, got := range inForce {
			if got.Kind == kind {
				s = got
				break
			}
		}
		return c.JSON(http.StatusOK, toSanctionJSON(s))
	}
}

// handleLift ends a user's ban or mute: DELETE /users/{user}/ban and
// DELETE /users/{user}/mute.
func handleLift(mod kaiwa.Moderation, kind kaiwa.SanctionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		if err := mod.Lift(c.Request().Context(), tenantOf(c), user, kind); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleListSanctions lists a user's bans and mutes in force:
// GET /users/{user}/sanctions.
func handleListSanctions(store kaiwa.ModerationStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		list, err := store.Sanctions(c.Request().Context(), tenantOf(c), user)
		if err != nil {
			return err
		}
		out := sanctionsResponse{Sanctions: make([]sanctionJSON, 0, len(list))}
		for _, s := range list {
			out.Sanctions = append(out.Sanctions, toSanctionJSON(s))
		}
		return c.JSON(http.StatusOK, out)
	}
}
