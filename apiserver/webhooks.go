package apiserver

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// webhookRequest is the body of POST /webhooks.
type webhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// webhookJSON describes a webhook; its secret only in the answer to its
// registration.
type webhookJSON struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret,omitempty"`
	CreatedAt string   `json:"created_at"`
}

func webhookOf(w kaiwa.Webhook, withSecret bool) webhookJSON {
	j := webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: rfc3339(w.CreatedAt)}
	if withSecret {
		j.Secret = w.Secret
	}
	return j
}

// handleAddWebhook registers a webhook ([kaiwa.Core.AddWebhook]):
// POST /webhooks.
func handleAddWebhook(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body webhookRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		w, err := core.AddWebhook(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), kaiwa.Webhook{
			URL: body.URL, Events: body.Events, Secret: body.Secret,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, webhookOf(w, true))
	}
}

// handleListWebhooks lists the tenant's webhooks: GET /webhooks.
func handleListWebhooks(store kaiwa.WebhookStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		list, err := store.Webhooks(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		out := make([]webhookJSON, 0, len(list))
		for _, w := range list {
			out = append(out, webhookOf(w, false))
		}
		return c.JSON(http.StatusOK, map[string]any{"webhooks": out})
	}
}

// handleDeleteWebhook removes a webhook ([kaiwa.Core.DeleteWebhook]):
// DELETE /webhooks/{id}.
func handleDeleteWebhook(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		if err := core.DeleteWebhook(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleListDeliveries lists a webhook's latest delivery attempts, newest
// first: GET /webhooks/{id}/deliveries?limit=N (default 50, at most 500).
func handleListDeliveries(store kaiwa.WebhookStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		limit := 50
		if s := c.QueryParam("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 500 {
				return kaiwa.Errorf(kaiwa.CodeBadRequest, "limit must be between 1 and 500")
			}
			limit = n
		}
		list, err := store.Deliveries(c.Request().Context(), tenantOf(c), id, limit)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"deliveries": list})
	}
}
