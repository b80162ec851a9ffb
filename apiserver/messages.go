package apiserver

import (
	"cmp"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// messageRequest is the body of the calls that post system messages.
type messageRequest struct {
	Text string          `json:"text"`
	Data json.RawMessage `json:"data"`
	CID  string          `json:"cid"`
}

func (r messageRequest) system() kaiwa.SystemMessage {
	return kaiwa.SystemMessage{Text: r.Text, Data: r.Data, CID: r.CID}
}

// postedResponse answers POST /channels/{ch}/messages and
// POST /users/{user}/messages, and is one entry of a broadcast's answer.
type postedResponse struct {
	ID      string `json:"id"`
	Seq     uint64 `json:"seq"`
	Channel string `json:"ch"`
}

func posted(m kaiwa.Message) postedResponse {
	return postedResponse{ID: m.ID, Seq: m.Seq, Channel: m.Channel}
}

// broadcastResponse answers POST /messages.
type broadcastResponse struct {
	Count    int              `json:"count"`
	Messages []postedResponse `json:"messages"`
}

// handlePostMessage publishes a system message to a channel, a direct
// channel or an inbox ([kaiwa.Core.PostMessage]):
// POST /channels/{ch}/messages.
func handlePostMessage(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		var body messageRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		m, err := core.PostMessage(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), ch, body.system())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, posted(m))
	}
}

// handlePostUserMessage publishes a system message to the inbox of one
// user, which every session of that user receives
// ([kaiwa.Core.PostUserMessage]): POST /users/{user}/messages.
func handlePostUserMessage(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		var body messageRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		m, err := core.PostUserMessage(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), user, body.system())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, posted(m))
	}
}

// batchRequest is the body of POST /messages/batch.
type batchRequest struct {
	Messages []batchItem `json:"messages"`
}

// batchItem is one message of a batch: to channel ch or to user's inbox.
type batchItem struct {
	messageRequest
	Channel string `json:"ch"`
	User    string `json:"user"`
}

// batchResponse answers POST /messages/batch: one result per message, in
// the order of the request.
type batchResponse struct {
	Published int           `json:"published"`
	Failed    int           `json:"failed"`
	Results   []batchResult `json:"results"`
}

// batchResult is one message's outcome: as published (id, seq, ch), or
// its error.
type batchResult struct {
	ID      string       `json:"id,omitempty"`
	Seq     uint64       `json:"seq,omitempty"`
	Channel string       `json:"ch,omitempty"`
	Error   *errorDetail `json:"error,omitempty"`
}

// handlePostBatch publishes up to [kaiwa.MaxBatch] system messages, each
// to a channel or a user's inbox, in one call ([kaiwa.Core.PostMessages]):
// POST /messages/batch. The batch counts as one call of the tenant's API
// rate per message. Each message succeeds or fails on its own; the answer
// is 200 with a result per message whenever the batch itself is well
// formed.
func handlePostBatch(core *kaiwa.Core, rates *tenantLimits) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body batchRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		if n := len(body.Messages); n > 1 && n <= kaiwa.MaxBatch {
			// The rate limit took the call itself: the other messages too.
			if err := rates.take(c, n-1); err != nil {
				return err
			}
		}
		posts := make([]kaiwa.Post, len(body.Messages))
		refused := make([]error, len(body.Messages))
		for i, it := range body.Messages {
			posts[i] = kaiwa.Post{Channel: it.Channel, SystemMessage: it.system()}
			switch {
			case (it.Channel == "") == (it.User == ""):
				refused[i] = kaiwa.Errorf(kaiwa.CodeBadRequest, "messages[%d]: name either ch or user", i)
			case it.User != "":
				refused[i] = kaiwa.CheckID("user", it.User)
				posts[i].Channel = kaiwa.Inbox(it.User)
			}
			if refused[i] != nil {
				// A post to no channel, which the core refuses on its
				// own; this error is the one answered.
				posts[i].Channel = ""
			}
		}
		sent, errs, err := core.PostMessages(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), posts)
		if err != nil {
			return err
		}
		out := batchResponse{Results: make([]batchResult, len(posts))}
		for i := range posts {
			if err := cmp.Or(refused[i], errs[i]); err != nil {
				_, code, message := describe(err)
				out.Results[i].Error = &errorDetail{Code: code, Message: message}
				out.Failed++
				continue
			}
			m := sent[i]
			out.Results[i] = batchResult{ID: m.ID, Seq: m.Seq, Channel: m.Channel}
			out.Published++
		}
		return c.JSON(http.StatusOK, out)
	}
}

// handleBroadcast publishes a system message to every open channel of the
// tenant, one message per channel ([kaiwa.Core.Broadcast]): POST /messages.
func handleBroadcast(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body messageRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		sent, err := core.Broadcast(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), body.system())
		if err != nil {
			return err
		}
		out := broadcastResponse{Count: len(sent), Messages: make([]postedResponse, len(sent))}
		for i, m := range sent {
			out.Messages[i] = posted(m)
		}
		return c.JSON(http.StatusCreated, out)
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

	ReplyTo     string             `json:"reply_to,omitempty"`
	Quote       *kaiwa.Quote       `json:"quote,omitempty"`
	Attachments []kaiwa.Attachment `json:"attachments,omitempty"`
	EditedAt    int64              `json:"edited_at,omitempty"`
	Reactions   []kaiwa.Reaction   `json:"reactions,omitempty"`
}

// toMessageJSON returns a log message as the API shows it.
func toMessageJSON(m kaiwa.Message) messageJSON {
	return messageJSON{
		ID: m.ID, Seq: m.Seq, Channel: m.Channel, From: m.From, Name: m.Name,
		Text: m.Text, Data: m.Data, TS: m.TS, System: m.System,
		ReplyTo: m.ReplyTo, Quote: m.Quote, Attachments: m.Attachments, EditedAt: m.EditedAt, Reactions: m.Reactions,
	}
}

// pageResponse answers GET /channels/{ch}/messages and GET /messages.
type pageResponse struct {
	Messages []messageJSON `json:"messages"`
	Next     string        `json:"next,omitempty"`
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
		return listMessages(c, log, q)
	}
}

// handleListAllMessages reads one page of the tenant's message log across
// channels: GET /messages.
func handleListAllMessages(log kaiwa.MessageLog, limits pageLimits) echo.HandlerFunc {
	return func(c echo.Context) error {
		q, err := parseMessageQuery(c.QueryParams(), limits)
		if err != nil {
			return err
		}
		return listMessages(c, log, q)
	}
}

// listMessages answers a log query with one page.
func listMessages(c echo.Context, log kaiwa.MessageLog, q kaiwa.MessageQuery) error {
	page, err := log.Messages(c.Request().Context(), tenantOf(c), q)
	if err != nil {
		return err
	}
	out := pageResponse{Messages: make([]messageJSON, 0, len(page.Messages)), Next: page.Next}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, toMessageJSON(m))
	}
	return c.JSON(http.StatusOK, out)
}

// handleDeleteMessage removes a message from the log and the stream's
// history, and tells the clients that show it to drop it
// ([kaiwa.Core.DeleteMessage]): DELETE /channels/{ch}/messages/{id}.
func handleDeleteMessage(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		id, err := messageIDParam(c)
		if err != nil {
			return err
		}
		if err := core.DeleteMessage(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), ch, id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
