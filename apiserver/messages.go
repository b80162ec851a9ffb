package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// maxCursorLen bounds the message ids given as before and after.
const maxCursorLen = 128

// messageRequest is the body of POST /channels/{ch}/messages.
type messageRequest struct {
	Text string          `json:"text"`
	Data json.RawMessage `json:"data"`
}

// postedResponse answers POST /channels/{ch}/messages.
type postedResponse struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// handlePostMessage publishes a system message to a channel:
// POST /channels/{ch}/messages. Direct channels are allowed.
func handlePostMessage(channels kaiwa.ChannelStore, tenants kaiwa.TenantStore, bus kaiwa.Publisher) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		var body messageRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		data := []byte(body.Data)
		if bytes.Equal(data, []byte("null")) {
			data = nil
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		if _, err := channels.Channel(ctx, tenant, ch); err != nil {
			return err
		}
		settings, err := tenants.TenantSettings(ctx, tenant)
		if err != nil {
			return err
		}
		if err := kaiwa.CheckContent(body.Text, data, settings); err != nil {
			return err
		}
		m, err := bus.Publish(ctx, kaiwa.Message{
			Tenant:  tenant,
			Channel: ch,
			Text:    body.Text,
			Data:    data,
			TS:      kaiwa.Now(),
			System:  true,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, postedResponse{ID: m.ID, Seq: m.Seq})
	}
}

// messageJSON is one message of a log page.
type messageJSON struct {
	ID      string          `json:"id"`
	Seq     uint64          `json:"seq"`
	Channel string          `json:"ch"`
	From    string          `json:"from,omitempty"`
	Name    string          `json:"name,omitempty"`
	Text    string          `json:"text"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      int64           `json:"ts"`
	System  bool            `json:"system"`
}

// pageResponse answers GET /channels/{ch}/messages.
type pageResponse struct {
	Messages []messageJSON `json:"messages"`
	Next     string        `json:"next,omitempty"`
}

// pageLimits are the default and largest page sizes of log queries.
type pageLimits struct {
	Default, Max int
}

// handleListMessages reads one page of a channel's message log:
// GET /channels/{ch}/messages.
func handleListMessages(log kaiwa.MessageLog, limits pageLimits) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		q, err := parseMessageQuery(c.QueryParams(), limits)
		if err != nil {
			return err
		}
		q.Channel = ch
		page, err := log.Messages(c.Request().Context(), tenantOf(c), q)
		if err != nil {
			return err
		}
		out := pageResponse{Messages: make([]messageJSON, 0, len(page.Messages)), Next: page.Next}
		for _, m := range page.Messages {
			out.Messages = append(out.Messages, messageJSON{
				ID: m.ID, Seq: m.Seq, Channel: m.Channel, From: m.From, Name: m.Name,
				Text: m.Text, Data: m.Data, TS: m.TS, System: m.System,
			})
		}
		return c.JSON(http.StatusOK, out)
	}
}

// parseMessageQuery reads the query parameters of a log query: limit,
// before, after, since, until, user and order. The channel is left empty.
func parseMessageQuery(v url.Values, limits pageLimits) (kaiwa.MessageQuery, error) {
	q := kaiwa.MessageQuery{Limit: limits.Default}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > limits.Max {
			return q, kaiwa.Errorf(kaiwa.CodeBadRequest, "limit must be an integer from 1 to %d", limits.Max)
		}
		q.Limit = n
	}
	var err error
	if q.Before, err = cursorParam(v, "before"); err != nil {
		return q, err
	}
	if q.After, err = cursorParam(v, "after"); err != nil {
		return q, err
	}
	if q.Since, err = timeParam(v, "since"); err != nil {
		return q, err
	}
	if q.Until, err = timeParam(v, "until"); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, kaiwa.Errorf(kaiwa.CodeBadRequest, "until is before since")
	}
	if q.User = v.Get("user"); q.User != "" {
		if err := kaiwa.CheckID("user", q.User); err != nil {
			return q, err
		}
	}
	switch order := v.Get("order"); order {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, kaiwa.Errorf(kaiwa.CodeBadRequest, `order must be "asc" or "desc"`)
	}
	return q, nil
}

// cursorParam returns a message id parameter: opaque, but printable ASCII
// of bounded length.
func cursorParam(v url.Values, name string) (string, error) {
	s := v.Get(name)
	if len(s) > maxCursorLen {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "%s is not a message id", name)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "%s is not a message id", name)
		}
	}
	return s, nil
}

// timeParam returns a time parameter given as milliseconds since the epoch
// or as an RFC 3339 time; the zero time when absent. A '+' of a time zone
// offset that arrived unescaped (and so decoded as a space) is restored.
func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > maxEpochMillis {
			return time.Time{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s is out of range", name)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return time.Time{}, kaiwa.Errorf(kaiwa.CodeBadRequest,
			"%s must be milliseconds since the epoch or an RFC 3339 time such as 2025-01-02T15:04:05Z", name)
	}
	return t, nil
}

// maxEpochMillis is the start of the year 10000, past which RFC 3339 cannot
// write a time.
const maxEpochMillis = 253402300800000
