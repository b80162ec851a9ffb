package apiserver

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// eventJSON is one entry of an event log page.
type eventJSON struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	User    string          `json:"user,omitempty"`
	Channel string          `json:"ch,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	TS      int64           `json:"ts"`
}

// eventsResponse answers GET /events.
type eventsResponse struct {
	Events []eventJSON `json:"events"`
	Next   string      `json:"next,omitempty"`
}

// handleListEvents reads one page of the tenant's event log, newest first:
// GET /events.
func handleListEvents(events kaiwa.EventLog, limits pageLimits) echo.HandlerFunc {
	return func(c echo.Context) error {
		q, err := parseEventQuery(c.QueryParams(), limits)
		if err != nil {
			return err
		}
		page, err := events.Events(c.Request().Context(), tenantOf(c), q)
		if err != nil {
			return err
		}
		out := eventsResponse{Events: make([]eventJSON, 0, len(page.Events)), Next: page.Next}
		for _, e := range page.Events {
			out.Events = append(out.Events, eventJSON{
				ID: e.ID, Type: e.Type, User: e.User, Channel: e.Channel, Detail: e.Detail, TS: e.TS,
			})
		}
		return c.JSON(http.StatusOK, out)
	}
}
