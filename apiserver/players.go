package apiserver

import (
	"net/http"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/labstack/echo/v4"
)

// searchResponse answers GET /messages/search.
type searchResponse struct {
	Messages []messageJSON `json:"messages"`
	Next     string        `json:"next,omitempty"`
}

// handleSearchMessages searches the tenant's message log: GET
// /messages/search?q=&ch=&user=&since=&until=&limit=&before=.
func handleSearchMessages(core *kaiwa.Core, limits pageLimits) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := c.QueryParams()
		q := kaiwa.SearchQuery{Q: v.Get("q")}
		var err error
		if q.Limit, err = limitParam(v, limits); err != nil {
			return err
		}
		if q.Since, q.Until, err = timeRange(v); err != nil {
			return err
		}
		if q.User, err = userQuery(v); err != nil {
			return err
		}
		q.Before = v.Get("before")
		if ch := v.Get("ch"); ch != "" {
			q.Channels = []string{ch}
		}
		page, err := core.Search(c.Request().Context(), tenantOf(c), q)
		if err != nil {
			return err
		}
		out := searchResponse{Messages: make([]messageJSON, 0, len(page.Messages)), Next: page.Next}
		for _, m := range page.Messages {
			out.Messages = append(out.Messages, toMessageJSON(m))
		}
		return c.JSON(http.StatusOK, out)
	}
}

// handleBlock makes a user block another (or, with unblock, no longer):
// PUT and DELETE /users/{user}/blocks/{other}.
func handleBlock(core *kaiwa.Core, unblock bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		other, err := pathID(c, "other")
		if err != nil {
			return err
		}
		if err := core.Block(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), user, other, unblock); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleListBlocks lists the users a user blocks: GET /users/{user}/blocks.
func handleListBlocks(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		blocks, err := core.Blocks(c.Request().Context(), tenantOf(c), user)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"blocks": blocks})
	}
}

// cursorJSON is one read cursor with the channel's unread count.
type cursorJSON struct {
	kaiwa.Cursor
	Unread int `json:"unread"`
}

// handleListCursors lists a user's read cursors, each with the unread
// count of its channel: GET /users/{user}/cursors.
func handleListCursors(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		ctx, t := c.Request().Context(), tenantOf(c)
		cursors, err := core.Cursors(ctx, t, user)
		if err != nil {
			return err
		}
		chs := make([]string, 0, len(cursors))
		for _, cur := range cursors {
			chs = append(chs, cur.Channel)
		}
		unread, err := core.Unread(ctx, t, user, chs)
		if err != nil {
			return err
		}
		counts := make(map[string]int, len(unread))
		for _, u := range unread {
			counts[u.Channel] = u.Count
		}
		out := make([]cursorJSON, 0, len(cursors))
		for _, cur := range cursors {
			out = append(out, cursorJSON{Cursor: cur, Unread: counts[cur.Channel]})
		}
		return c.JSON(http.StatusOK, map[string]any{"cursors": out})
	}
}

// handleListEdits lists the edits of a message, for operators: GET
// /channels/{ch}/messages/{id}/edits.
func handleListEdits(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		id, err := messageIDParam(c)
		if err != nil {
			return err
		}
		edits, err := core.MessageEdits(c.Request().Context(), tenantOf(c), ch, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"edits": edits})
	}
}

// pathID reads a user id path parameter other than "user".
func pathID(c echo.Context, name string) (string, error) {
	v, err := pathParam(c, name)
	if err != nil {
		return "", err
	}
	if err := kaiwa.CheckID(name+" user", v); err != nil {
		return "", err
	}
	return v, nil
}
