package apiserver

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// channelRequest is the body of PUT /channels/{ch}.
type channelRequest struct {
	Kind  kaiwa.ChannelKind `json:"kind"`
	Title string            `json:"title"`
}

// handlePutChannel creates or updates a channel ([kaiwa.Core.PutChannel]):
// PUT /channels/{ch}. It answers 201 when the channel was created and 200
// when it was updated, with the channel as stored.
func handlePutChannel(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		var body channelRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		ch := kaiwa.Channel{Tenant: tenantOf(c), Name: name, Kind: body.Kind, Title: body.Title}
		stored, created, err := core.PutChannel(c.Request().Context(), kaiwa.ActorAPI, ch)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return c.JSON(status, stored)
	}
}

// handleDeleteChannel removes a channel, its membership and its live
// sessions ([kaiwa.Core.DeleteChannel]): DELETE /channels/{ch}.
func handleDeleteChannel(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := core.DeleteChannel(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), name); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
