package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// broadcastWorkers bounds the publishes of one POST /messages in flight.
const broadcastWorkers = 8

// messageRequest is the body of the calls that post system messages.
type messageRequest struct {
	Text string          `json:"text"`
	Data json.RawMessage `json:"data"`
}

// postedResponse answers POST /channels/{ch}/messages and
// POST /users/{user}/messages, and is one entry of a broadcast's answer.
type postedResponse struct {
	ID      string `json:"id"`
	Seq     uint64 `json:"seq"`
	Channel string `json:"ch"`
}

// broadcastResponse answers POST /messages.
type broadcastResponse struct {
	Count    int              `json:"count"`
	Messages []postedResponse `json:"messages"`
}

// systemMessage reads the body of a system message call and checks it
// against the tenant's limits. It returns the message for channel ch.
func systemMessage(c echo.Context, tenants kaiwa.TenantStore, ch string) (kaiwa.Message, error) {
	var body messageRequest
	if err := bind(c, &body); err != nil {
		return kaiwa.Message{}, err
	}
	data := []byte(body.Data)
	if bytes.Equal(data, []byte("null")) {
		data = nil
	}
	ctx, tenant := c.Request().Context(), tenantOf(c)
	settings, err := tenants.TenantSettings(ctx, tenant)
	if err != nil {
		return kaiwa.Message{}, err
	}
	if err := kaiwa.CheckContent(body.Text, data, settings); err != nil {
		return kaiwa.Message{}, err
	}
	return kaiwa.Message{
		Tenant:  tenant,
		Channel: ch,
		Text:    body.Text,
		Data:    data,
		TS:      kaiwa.Now(),
		System:  true,
	}, nil
}

// recordSystem records the event of a system message published to one
// channel or inbox.
func recordSystem(rec kaiwa.Recorder, m kaiwa.Message) {
	record(rec, m.Tenant, kaiwa.EventSystem, "", m.Channel, map[string]any{"id": m.ID, "seq": m.Seq})
}

// handlePostMessage publishes a system message to a channel:
// POST /channels/{ch}/messages. Direct and inbox channels are allowed.
func handlePostMessage(channels kaiwa.ChannelStore, tenants kaiwa.TenantStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		m, err := systemMessage(c, tenants, ch)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		// An inbox exists for every user id; every other channel must.
		if !kaiwa.IsInbox(ch) {
			if _, err := channels.Channel(ctx, m.Tenant, ch); err != nil {
				return err
			}
		}
		if m, err = bus.Publish(ctx, m); err != nil {
			return err
		}
		recordSystem(rec, m)
		return c.JSON(http.StatusCreated, postedResponse{ID: m.ID, Seq: m.Seq, Channel: m.Channel})
	}
}

// handlePostUserMessage publishes a system message to the inbox of one
// user, which every session of that user receives:
// POST /users/{user}/messages.
func handlePostUserMessage(tenants kaiwa.TenantStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		m, err := systemMessage(c, tenants, kaiwa.Inbox(user))
		if err != nil {
			return err
		}
		if m, err = bus.Publish(c.Request().Context(), m); err != nil {
			return err
		}
		recordSystem(rec, m)
		return c.JSON(http.StatusCreated, postedResponse{ID: m.ID, Seq: m.Seq, Channel: m.Channel})
	}
}

// handleBroadcast publishes a system message to every open channel of the
// tenant, one message per channel: POST /messages.
func handleBroadcast(channels kaiwa.ChannelStore, tenants kaiwa.TenantStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		m, err := systemMessage(c, tenants, "")
		if err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		open, err := channels.Channels(ctx, tenant, kaiwa.ChannelOpen)
		if err != nil {
			return err
		}
		msgs := make([]kaiwa.Message, len(open))
		for i, ch := range open {
			msgs[i] = m
			msgs[i].Channel = ch.Name
		}
		sent, err := publishAll(ctx, bus, msgs, broadcastWorkers)
		if err != nil {
			return err
		}
		out := broadcastResponse{Count: len(sent), Messages: make([]postedResponse, len(sent))}
		for i, m := range sent {
			out.Messages[i] = postedResponse{ID: m.ID, Seq: m.Seq, Channel: m.Channel}
		}
		record(rec, tenant, kaiwa.EventSystem, "", "", map[string]any{"broadcast": true, "channels": len(sent)})
		return c.JSON(http.StatusCreated, out)
	}
}

// publishAll publishes msgs with at most workers publishes in flight and
// returns them as published, in order. It stops at the first failure, whose
// error says how many were published before it.
func publishAll(ctx context.Context, bus kaiwa.Publisher, msgs []kaiwa.Message, workers int) ([]kaiwa.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]kaiwa.Message, len(msgs))
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sent     int
	)
	for range min(workers, len(msgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m, err := bus.Publish(ctx, msgs[i])
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				} else {
					out[i] = m
					sent++
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range msgs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		what := fmt.Sprintf("published to %d of %d open channels", sent, len(msgs))
		if code := kaiwa.ErrorCode(firstErr); code != kaiwa.CodeInternal {
			return nil, kaiwa.Errorf(code, "%s, then: %s", what, kaiwa.ErrorMessage(firstErr))
		}
		return nil, fmt.Errorf("broadcast: %s: %w", what, firstErr)
	}
	return out, nil
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
		out.Messages = append(out.Messages, messageJSON{
			ID: m.ID, Seq: m.Seq, Channel: m.Channel, From: m.From, Name: m.Name,
			Text: m.Text, Data: m.Data, TS: m.TS, System: m.System,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// handleDeleteMessage removes a message from the log and the stream's
// history, and tells the clients that show it to drop it:
// DELETE /channels/{ch}/messages/{id}.
func handleDeleteMessage(log kaiwa.MessageLog, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		ch, err := channelParam(c)
		if err != nil {
			return err
		}
		id, err := messageIDParam(c)
		if err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		// The stream first: a message it holds exists, so the log keeps a
		// tombstone for it even if the log writer has not written it yet
		// (it stays deleted when it arrives). An id neither holds leaves
		// nothing behind: a later message with that id is not suppressed.
		inStream := true
		if err := bus.DeleteMessage(ctx, tenant, ch, id); err != nil {
			if !kaiwa.IsCode(err, kaiwa.CodeNotFound) {
				return err
			}
			inStream = false
		}
		inLog, err := log.DeleteMessage(ctx, tenant, ch, id, inStream)
		if err != nil {
			return err
		}
		found := inLog || inStream
		if found {
			record(rec, tenant, kaiwa.EventMsgDeleted, "", ch, map[string]any{"id": id})
		}
		// Published also when the message was already gone, so that a
		// retry after a failed publish still reaches the clients.
		err = bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlMessageDeleted, Tenant: tenant, Channel: ch, ID: id})
		if err != nil {
			return err
		}
		if !found {
			return kaiwa.Errorf(kaiwa.CodeNotFound, "no message %s in channel %s", id, ch)
		}
		return c.NoContent(http.StatusNoContent)
	}
}
