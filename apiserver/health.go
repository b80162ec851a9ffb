package apiserver

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// statusResponse answers /healthz and /readyz.
type statusResponse struct {
	Status string `json:"status"`
}

// handleHealthz reports that the process is alive: GET /healthz.
func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, statusResponse{Status: "ok"})
	}
}

// handleReadyz reports whether the server can serve: GET /readyz answers
// 200 when ready returns nil within timeout (a nil ready is always ready),
// else 503 with the code "unavailable".
func handleReadyz(ready func(context.Context) error, timeout time.Duration) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ready != nil {
			ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				msg := "not ready"
				if kaiwa.ErrorCode(err) != kaiwa.CodeInternal {
					msg += ": " + kaiwa.ErrorMessage(err)
				}
				return kaiwa.Errorf(kaiwa.CodeUnavailable, "%s", msg)
			}
		}
		return c.JSON(http.StatusOK, statusResponse{Status: "ready"})
	}
}
