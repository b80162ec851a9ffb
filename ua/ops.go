package ua

import (
	"context"
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// History limits of the history op.
const (
	defaultHistory = 50
	maxHistory     = 100
)

// handle executes one op and queues its reply.
func (ss *session) handle(ctx context.Context, c *versions.Command) {
	var reply any
	var err error
	switch c.Op {
	case versions.OpJoin:
		reply, err = ss.opJoin(ctx, c)
	case versions.OpLeave:
		reply, err = ss.opLeave(c)
	case versions.OpSay:
		reply, err = ss.opSay(ctx, c)
	case versions.OpDM:
		reply, err = ss.opDM(ctx, c)
	case versions.OpHistory:
		reply, err = ss.opHistory(ctx, c)
	case versions.OpPing:
		reply = versions.OutPong{Op: "pong", Ref: c.Ref}
	case versions.OpAuth:
		err = kaiwa.Errorf(kaiwa.CodeBadRequest, "already authenticated")
	default:
		err = kaiwa.Errorf(kaiwa.CodeUnknownOp, "unknown op %.32q", c.Op)
	}
	if err != nil {
		ss.sendError(c.Ref, err)
		return
	}
	ss.send(reply)
}

func (ss *session) opJoin(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if kaiwa.IsDM(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "direct channels need no join; use the dm op")
	}
	ok := versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch}
	if ss.joined(c.Ch) {
		return ok, nil
	}
	ch, err := ss.srv.cfg.Directory.Channel(ctx, ss.id.Tenant, c.Ch)
	if err != nil {
		return nil, err
	}
	switch ch.Kind {
	case kaiwa.ChannelClosed:
		member, err := ss.srv.cfg.Directory.IsMember(ctx, ss.id.Tenant, c.Ch, ss.id.User)
		if err != nil {
			return nil, err
		}
		if !member {
			return nil, kaiwa.Errorf(kaiwa.CodeForbidden, "channel is closed to non-members")
		}
	default:
		if !ss.id.CanJoin(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeForbidden, "your token does not permit joining this channel")
		}
	}
	if err := ss.join(c.Ch); err != nil {
		return nil, err
	}
	return ok, nil
}

func (ss *session) opLeave(c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if kaiwa.IsDM(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "direct channels cannot be left")
	}
	if !ss.leave(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "not in this channel")
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch}, nil
}

// ownDM reports whether ch is a direct channel of the session's user.
func (ss *session) ownDM(ch string) bool {
	a, b, ok := kaiwa.ParseDM(ch)
	return ok && (a == ss.id.User || b == ss.id.User)
}

func (ss *session) opSay(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if kaiwa.IsDM(c.Ch) {
		if !ss.ownDM(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "not a direct channel of yours")
		}
	} else if !ss.joined(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
	}
	m, err := ss.publish(ctx, c.Ch, c)
	if err != nil {
		return nil, err
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, ID: m.ID, Seq: m.Seq}, nil
}

func (ss *session) opDM(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckID("recipient", c.To); err != nil {
		return nil, err
	}
	if c.To == ss.id.User {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "cannot send a direct message to yourself")
	}
	ch := kaiwa.DMChannel(ss.id.User, c.To)
	m, err := ss.publish(ctx, ch, c)
	if err != nil {
		return nil, err
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, ID: m.ID, Seq: m.Seq, Ch: ch}, nil
}

// publish checks permission and content and puts the message on the bus.
func (ss *session) publish(ctx context.Context, ch string, c *versions.Command) (kaiwa.Message, error) {
	if !ss.id.CanPublish(ch) {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeForbidden, "your token does not permit publishing here")
	}
	data := c.Data
	if err := kaiwa.CheckContent(c.Text, data, ss.settings); err != nil {
		return kaiwa.Message{}, err
	}
	return ss.srv.cfg.Bus.Publish(ctx, kaiwa.Message{
		Tenant: ss.id.Tenant, Channel: ch, From: ss.id.User, Name: ss.id.Name,
		Text: c.Text, Data: json.RawMessage(data), CID: c.CID, TS: kaiwa.Now(),
	})
}

func (ss *session) opHistory(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	limit := c.Limit
	switch {
	case limit == 0:
		limit = defaultHistory
	case limit < 0 || limit > maxHistory:
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "limit must be between 1 and %d", maxHistory)
	}
	if !ss.joined(c.Ch) && !ss.ownDM(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
	}
	msgs, err := ss.srv.cfg.Bus.History(ctx, ss.id.Tenant, c.Ch, c.Before, limit)
	if err != nil {
		return nil, err
	}
	out := versions.OutHistory{Op: "history", Ref: c.Ref, Ch: c.Ch, Messages: make([]json.RawMessage, len(msgs))}
	for i := range msgs {
		out.Messages[i] = ss.codec.EncodeMessage(&msgs[i])
	}
	return out, nil
}
