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
// route.
func memberParams(c echo.Context) (ch, user string, err error) {
	if ch, err = channelParam(c); err != nil {
		return "", "", err
	}
	if user, err = userParam(c); err != nil {
		return "", "", err
	}
	return ch, user, nil
}

// handleAddMember makes a user a member of a channel, live
// ([kaiwa.Core.AddMember]): PUT /channels/{ch}/members/{user}. It answers
// 201 when the user was added and 200 when already a member.
func handleAddMember(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, user, err := memberParams(c)
		if err != nil {
			return err
		}
		added, err := core.AddMember(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), ch, user)
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

// handleRemoveMember removes a user from a channel, live
// ([kaiwa.Core.RemoveMember]): DELETE /channels/{ch}/members/{user}.
func handleRemoveMember(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, user, err := memberParams(c)
		if err != nil {
			return err
		}
		if err := core.RemoveMember(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), ch, user); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleListMembers lists a channel's members in id order:
// GET /channels/{ch}/members. Direct and inbox channels have no members
// to list.
func handleListMembers(channels kaiwa.ChannelStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		if err := kaiwa.CheckManaged(ch); err != nil {
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
