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

// handlePutChannel creates or updates a channel: PUT /channels/{ch}. It
// answers 201 when the channel was created and 200 when it was updated,
// with the channel as stored. A channel that is closed now takes the live
// sessions of non-members out of it.
func handlePutChannel(channels kaiwa.ChannelStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := notImplicit(name); err != nil {
			return err
		}
		var body channelRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		ch := kaiwa.Channel{Tenant: tenant, Name: name, Kind: body.Kind, Title: body.Title}
		if err := ch.Check(); err != nil {
			return err
		}
		created, err := channels.PutChannel(ctx, ch)
		if err != nil {
			return err
		}
		record(rec, tenant, kaiwa.EventChannelPut, "", name,
			map[string]any{"kind": string(ch.Kind), "created": created})
		if ch.Kind == kaiwa.ChannelClosed && !created {
			// Published on every update to closed, so that a retry after
			// a failed publish still reaches the live sessions.
			if err := bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelClosed, Tenant: tenant, Channel: name}); err != nil {
				return err
			}
		}
		stored, err := channels.Channel(ctx, tenant, name)
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

// handleDeleteChannel removes a channel and its membership, and makes every
// live session leave it: DELETE /channels/{ch}.
func handleDeleteChannel(channels kaiwa.ChannelStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := notImplicit(name); err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		delErr := channels.DeleteChannel(ctx, tenant, name)
		if delErr != nil && !kaiwa.IsCode(delErr, kaiwa.CodeNotFound) {
			return delErr
		}
		if delErr == nil {
			record(rec, tenant, kaiwa.EventChannelDel, "", name, nil)
		}
		// Published also when the channel was already gone, so that a retry
		// after a failed publish still reaches the live sessions.
		err = bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlChannelDeleted, Tenant: tenant, Channel: name})
		if err != nil {
			return err
		}
		if delErr != nil {
			return delErr
		}
		return c.NoContent(http.StatusNoContent)
	}
}
