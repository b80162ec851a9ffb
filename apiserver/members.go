package apiserver

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// memberResponse answers PUT /channels/{ch}/members/{user}.
type memberResponse struct {
	Channel string `json:"ch"`
	User    string `json:"user"`
}

// membersResponse answers GET /channels/{ch}/members.
type membersResponse struct {
	Members []string `json:"members"`
}

// memberParams returns the validated channel and user of a membership
// route. Direct channels have implicit members and are refused.
func memberParams(c echo.Context) (ch, user string, err error) {
	if ch, err = channelParam(c); err != nil {
		return "", "", err
	}
	if err = notImplicit(ch); err != nil {
		return "", "", err
	}
	if user, err = userParam(c); err != nil {
		return "", "", err
	}
	return ch, user, nil
}

// handleAddMember makes a user a member of a channel, and the user's live
// sessions join it: PUT /channels/{ch}/members/{user}. It answers 201 when
// the user was added and 200 when already a member.
func handleAddMember(channels kaiwa.ChannelStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, user, err := memberParams(c)
		if err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		added, err := channels.AddMember(ctx, tenant, ch, user)
		if err != nil {
			return err
		}
		if added {
			record(rec, tenant, kaiwa.EventMemberAdd, user, ch, nil)
		}
		// Published also when already a member, so that a retry after a
		// failed publish still reaches the live sessions.
		err = bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberAdded, Tenant: tenant, Channel: ch, User: user})
		if err != nil {
			return err
		}
		status := http.StatusOK
		if added {
			status = http.StatusCreated
		}
		return c.JSON(status, memberResponse{Channel: ch, User: user})
	}
}

// handleRemoveMember removes a user from a channel, and the user's live
// sessions leave it: DELETE /channels/{ch}/members/{user}.
func handleRemoveMember(channels kaiwa.ChannelStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, user, err := memberParams(c)
		if err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		rmErr := channels.RemoveMember(ctx, tenant, ch, user)
		if rmErr != nil && !kaiwa.IsCode(rmErr, kaiwa.CodeNotFound) {
			return rmErr
		}
		if rmErr == nil {
			record(rec, tenant, kaiwa.EventMemberRemove, user, ch, nil)
		}
		// Published also when not a member (any more), so that a retry
		// after a failed publish still reaches the live sessions.
		err = bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMemberRemoved, Tenant: tenant, Channel: ch, User: user})
		if err != nil {
			return err
		}
		if rmErr != nil {
			return rmErr
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleListMembers lists a channel's members in id order:
// GET /channels/{ch}/members.
func handleListMembers(channels kaiwa.ChannelStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := notImplicit(ch); err != nil {
			return err
		}
		members, err := channels.Members(c.Request().Context(), tenantOf(c), ch)
		if err != nil {
			return err
		}
		if members == nil {
			members = []string{}
		}
		return c.JSON(http.StatusOK, membersResponse{Members: members})
	}
}
