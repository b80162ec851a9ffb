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

// handleKick closes a user's live sessions ([kaiwa.Core.Kick]):
// POST /users/{user}/kick.
func handleKick(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		var body kickRequest
		if err := bindOptional(c, &body); err != nil {
			return err
		}
		if err := core.Kick(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), user, body.Reason); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleSanction bans or mutes a user until a time, replacing a sanction
// of the same kind ([kaiwa.Core.Sanction]): PUT /users/{user}/ban and
// PUT /users/{user}/mute. It answers with the sanction as stored.
func handleSanction(core *kaiwa.Core, kind kaiwa.SanctionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		var body sanctionRequest
		if err := bindOptional(c, &body); err != nil {
			return err
		}
		s := kaiwa.Sanction{Tenant: tenantOf(c), User: user, Kind: kind, Until: body.Until.Time, Reason: body.Reason}
		if s, err = core.Sanction(c.Request().Context(), kaiwa.ActorAPI, s); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toSanctionJSON(s))
	}
}

// handleLift ends a user's ban or mute ([kaiwa.Core.Lift]):
// DELETE /users/{user}/ban and DELETE /users/{user}/mute.
func handleLift(core *kaiwa.Core, kind kaiwa.SanctionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		if err := core.Lift(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), user, kind); err != nil {
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
