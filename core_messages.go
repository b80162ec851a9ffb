package kaiwa

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// broadcastWorkers bounds the publishes of one [Core.Broadcast] in flight.
const broadcastWorkers = 8

// PostMessage publishes a system message to channel ch of tenant t: a
// channel the tenant made, a direct channel or a user's inbox (which
// exists for every user). Text and data are checked against the tenant's
// limits ([CheckContent]); data "null" is no data. It returns the message
// as published (ID, Seq). Event: system (detail.id, detail.seq).
func (c *Core) PostMessage(ctx context.Context, actor string, t TenantID, ch string, sm SystemMessage) (Message, error) {
	if err := checkActor(actor); err != nil {
		return Message{}, err
	}
	m, err := c.systemPost(ctx, t, Post{Channel: ch, SystemMessage: sm})
	if err != nil {
		return Message{}, err
	}
	if m, err = c.Bus.Publish(ctx, m); err != nil {
		return Message{}, err
	}
	c.record(actor, t, EventSystem, "", m.Channel, map[string]any{"id": m.ID, "seq": m.Seq})
	return m, nil
}

// MaxBatch bounds the posts of one [Core.PostMessages].
const MaxBatch = 100

// Post is one system message of [Core.PostMessages] and the channel it
// goes to: a channel the tenant made, a direct channel or a user's inbox.
type Post struct {
	Channel string
	SystemMessage
}

// PostMessages publishes up to [MaxBatch] system messages of tenant t, each
// checked as [Core.PostMessage] checks one, with their publishes sent
// together and their acknowledgements awaited together. Each post succeeds
// or fails on its own: out[i] is posts[i] as published, errs[i] its error
// (a CID makes a failed post safe to send again). err refuses the whole
// batch: no actor, no posts or more than MaxBatch. Event: one system for
// the batch (detail.batch: how many were published, detail.ids: their ids
// in the order of posts).
func (c *Core) PostMessages(ctx context.Context, actor string, t TenantID, posts []Post) (out []Message, errs []error, err error) {
	if err := checkActor(actor); err != nil {
		return nil, nil, err
	}
	if len(posts) == 0 || len(posts) > MaxBatch {
		return nil, nil, Errorf(CodeBadRequest, "a batch holds 1 to %d messages, not %d", MaxBatch, len(posts))
	}
	out = make([]Message, len(posts))
	errs = make([]error, len(posts))
	var ok []int // the posts that passed their checks, by index
	for i, p := range posts {
		if out[i], errs[i] = c.systemPost(ctx, t, p); errs[i] == nil {
			ok = append(ok, i)
		}
	}
	msgs := make([]Message, len(ok))
	for j, i := range ok {
		msgs[j] = out[i]
	}
	sent, perr := publishBatch(ctx, c.Bus, msgs)
	var ids []string
	for j, i := range ok {
		out[i], errs[i] = sent[j], perr[j]
		if errs[i] == nil {
			ids = append(ids, out[i].ID)
		}
	}
	if len(ids) > 0 {
		c.record(actor, t, EventSystem, "", "", map[string]any{"batch": len(ids), "ids": ids})
	}
	return out, errs, nil
}

// systemPost checks post p of tenant t and returns its message, ready to
// publish.
func (c *Core) systemPost(ctx context.Context, t TenantID, p Post) (Message, error) {
	if err := CheckChannel(p.Channel); err != nil {
		return Message{}, err
	}
	m, err := c.systemMessage(ctx, t, p.SystemMessage)
	if err != nil {
		return Message{}, err
	}
	if !IsInbox(p.Channel) {
		if _, err := c.channelOf(ctx, t, p.Channel); err != nil {
			return Message{}, err
		}
	}
	m.Channel = p.Channel
	return m, nil
}

// publishBatch publishes msgs through bus's [BatchPublisher] when it has
// one, else one at a time; out[i] and errs[i] are msgs[i]'s outcome.
func publishBatch(ctx context.Context, bus Publisher, msgs []Message) (out []Message, errs []error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	if bp, ok := bus.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, msgs)
	}
	out = make([]Message, len(msgs))
	errs = make([]error, len(msgs))
	for i, m := range msgs {
		out[i], errs[i] = bus.Publish(ctx, m)
	}
	return out, errs
}

// PostUserMessage publishes a system message to the inbox of one user of
// tenant t, which every session of that user receives; see
// [Core.PostMessage].
func (c *Core) PostUserMessage(ctx context.Context, actor string, t TenantID, user string, sm SystemMessage) (Message, error) {
	if err := CheckID("user", user); err != nil {
		return Message{}, err
	}
	return c.PostMessage(ctx, actor, t, Inbox(user), sm)
}

// Broadcast publishes a system message to every open channel of tenant t,
// one message per channel, and returns them as published, in channel-name
// order. It stops at the first failure, whose error says how many were
// published before it. Event: system (detail.broadcast, detail.channels),
// once all are published.
func (c *Core) Broadcast(ctx context.Context, actor string, t TenantID, sm SystemMessage) ([]Message, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	m, err := c.systemMessage(ctx, t, sm)
	if err != nil {
		return nil, err
	}
	open, err := c.Channels.Channels(ctx, t, ChannelOpen)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, len(open))
	for i, ch := range open {
		msgs[i] = m
		msgs[i].Channel = ch.Name
		if m.CID != "" {
			msgs[i].CID = m.CID + "@" + ch.Name // one id per channel's message
		}
	}
	sent, err := publishAll(ctx, c.Bus, msgs, broadcastWorkers)
	if err != nil {
		return nil, err
	}
	c.record(actor, t, EventSystem, "", "", map[string]any{"broadcast": true, "channels": len(sent)})
	return sent, nil
}

// SystemMessage is what the game server posts: text and data as for a
// client's say, and an optional client message id (CID, at most
// [MaxRefLen] characters): a post whose CID the stream has seen within the
// de-duplication window answers with the first message and posts nothing
// again, so a game server may retry a post whose outcome it does not know.
type SystemMessage struct {
	Text string
	Data []byte
	CID  string
}

// systemMessage checks a system message against tenant t's limits and
// returns it, without a channel.
func (c *Core) systemMessage(ctx context.Context, t TenantID, sm SystemMessage) (Message, error) {
	text, data := sm.Text, sm.Data
	if bytes.Equal(data, []byte("null")) {
		data = nil
	}
	if len(sm.CID) > MaxRefLen {
		return Message{}, Errorf(CodeBadRequest, "cid longer than %d characters", MaxRefLen)
	}
	settings, err := c.settingsOf(ctx, t)
	if err != nil {
		return Message{}, err
	}
	if err := CheckContent(text, data, settings); err != nil {
		return Message{}, err
	}
	return Message{Tenant: t, Text: text, Data: data, CID: sm.CID, TS: c.now().UnixMilli(), System: true}, nil
}

// publishAll publishes msgs with at most workers publishes in flight and
// returns them as published, in order. It stops at the first failure, whose
// error says how many were published before it.
func publishAll(ctx context.Context, bus Publisher, msgs []Message, workers int) ([]Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]Message, len(msgs))
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
		if code := ErrorCode(firstErr); code != CodeInternal {
			return nil, Errorf(code, "%s, then: %s", what, ErrorMessage(firstErr))
		}
		return nil, fmt.Errorf("broadcast: %s: %w", what, firstErr)
	}
	return out, nil
}

// DeleteMessage removes message id of channel ch from the stream's history
// and from the log, and tells the clients that show it to drop it
// ([ControlMessageDeleted], published also when the message was already
// gone). [CodeNotFound] when neither held it. Event: message_deleted
// (detail.id).
//
// The stream is asked first: a message it holds exists, so the log keeps
// a tombstone for it even when the log writer has not written it yet (it
// stays deleted when it arrives). An id neither holds leaves nothing
// behind, so a later message with that id is not suppressed.
func (c *Core) DeleteMessage(ctx context.Context, actor string, t TenantID, ch, id string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := CheckChannel(ch); err != nil {
		return err
	}
	return c.deleteMessage(ctx, actor, t, ch, id, "")
}

// deleteMessage is the rule of [Core.DeleteMessage]; the event names user
// (the author deleting their own message) when not empty.
func (c *Core) deleteMessage(ctx context.Context, actor string, t TenantID, ch, id, user string) error {
	inStream := true
	if err := c.Bus.DeleteMessage(ctx, t, ch, id); err != nil {
		if !IsCode(err, CodeNotFound) {
			return err
		}
		inStream = false
	}
	inLog, err := c.Log.DeleteMessage(ctx, t, ch, id, inStream)
	if err != nil {
		return err
	}
	found := inLog || inStream
	var missing error
	if !found {
		missing = Errorf(CodeNotFound, "no message %s in channel %s", id, ch)
	}
	return c.settle(ctx, Control{Kind: ControlMessageDeleted, Tenant: t, Channel: ch, ID: id, User: user}, found, missing,
		actor, EventMsgDeleted, map[string]any{"id": id})
}
