package ua

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
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
	case opPresence:
		reply, err = ss.opPresenceList(ctx, c)
	case versions.OpAuth:
		err = kaiwa.Errorf(kaiwa.CodeBadRequest, "already authenticated")
	case versions.OpEdit, versions.OpDelete, versions.OpReact, versions.OpUnreact, versions.OpRead,
		versions.OpUnread, versions.OpBlock, versions.OpUnblock, versions.OpTyping, versions.OpSearch:
		reply, err = ss.handlePlayer(ctx, c)
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
	if err := ss.tryJoin(ctx, c.Ch); err != nil {
		return nil, err
	}
	if ss.sequenced() {
		// v2: where the channel stood when the session joined it, so that
		// a client that sees no message there can still resume it.
		if pos, ok := ss.position(c.Ch); ok {
			return versions.OutJoinOK{Op: "ok", Ref: c.Ref, Ch: c.Ch, Seq: pos}, nil
		}
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch}, nil
}

// tryJoin joins channel ch if the channel exists and the user may join it:
// an open channel needs a matching join permission, a closed one
// membership. Joining a channel already joined succeeds.
func (ss *session) tryJoin(ctx context.Context, name string) error {
	if err := kaiwa.CheckChannel(name); err != nil {
		return err
	}
	if kaiwa.IsDM(name) || kaiwa.IsInbox(name) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "direct and inbox channels need no join")
	}
	if ss.joined(name) {
		return nil
	}
	ch, err := ss.srv.cfg.Directory.Channel(ctx, ss.id.Tenant, name)
	if err != nil {
		return err
	}
	switch ch.Kind {
	case kaiwa.ChannelClosed:
		member, err := ss.srv.cfg.Directory.IsMember(ctx, ss.id.Tenant, name, ss.id.User)
		if err != nil {
			return err
		}
		if !member {
			return kaiwa.Errorf(kaiwa.CodeForbidden, "channel is closed to non-members")
		}
		ss.setMember(name, true)
	default:
		if !ss.id.CanJoin(name) {
			return kaiwa.Errorf(kaiwa.CodeForbidden, "your token does not permit joining this channel")
		}
	}
	return ss.join(name)
}

func (ss *session) opLeave(c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if kaiwa.IsDM(c.Ch) || kaiwa.IsInbox(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "direct and inbox channels cannot be left")
	}
	if !ss.leave(c.Ch, false) {
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "not in this channel")
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch}, nil
}

// ownDM reports whether ch is a direct channel or the inbox of the
// session's user.
func (ss *session) ownDM(ch string) bool {
	if u, ok := kaiwa.InboxUser(ch); ok {
		return u == ss.id.User
	}
	a, b, ok := kaiwa.ParseDM(ch)
	return ok && (a == ss.id.User || b == ss.id.User)
}

func (ss *session) opSay(ctx context.Context, c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	if kaiwa.IsInbox(c.Ch) {
		return nil, kaiwa.Errorf(kaiwa.CodeForbidden, "inboxes receive system messages only")
	}
	if kaiwa.IsDM(c.Ch) {
		if !ss.ownDM(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "not a direct channel of yours")
		}
		// The same as a dm to the other user.
		to, other, _ := kaiwa.ParseDM(c.Ch)
		if to == ss.id.User {
			to = other
		}
		if err := ss.checkNotBlocked(ctx, to); err != nil {
			return nil, err
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
	if err := ss.checkNotBlocked(ctx, c.To); err != nil {
		return nil, err
	}
	m, err := ss.publish(ctx, ch, c)
	if err != nil {
		return nil, err
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, ID: m.ID, Seq: m.Seq, Ch: ch}, nil
}

// publish checks permission, mute, content and NG words, and puts the
// message on the bus.
func (ss *session) publish(ctx context.Context, ch string, c *versions.Command) (kaiwa.Message, error) {
	// Belonging to a channel is what lets a user speak there; the token's
	// publish prefixes govern the rest (open channels, direct messages).
	if !ss.id.CanPublish(ch) && !ss.member(ch) {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeForbidden, "your token does not permit publishing here")
	}
	now := time.Now()
	if until, ok := ss.mutedNow(now); ok {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeMuted, "%s", ss.muteText(until))
	}
	data := c.Data
	if err := kaiwa.CheckContent(c.Text, data, ss.settings()); err != nil {
		return kaiwa.Message{}, err
	}
	if err := ss.admitSend(); err != nil {
		return kaiwa.Message{}, err
	}
	extras, err := ss.sayExtras(ctx, ch, c)
	if err != nil {
		return kaiwa.Message{}, err
	}
	text, err := ss.filter(ctx, ch, c.Text, now)
	if err != nil {
		return kaiwa.Message{}, err
	}
	if text, data, err = ss.beforeSend(ctx, ch, text, data, now); err != nil {
		return kaiwa.Message{}, err
	}
	// Every send has a cid, the client's or a fresh one, so that the bus
	// can retry it without storing it twice, and a client told that the
	// outcome is unknown can resend it safely.
	cid := c.CID
	if cid == "" {
		cid = kaiwa.NewCID()
	}
	m, err := ss.srv.cfg.Bus.Publish(ctx, kaiwa.Message{
		Tenant: ss.id.Tenant, Channel: ch, From: ss.id.User, Name: ss.id.Name,
		Text: text, Data: json.RawMessage(data), CID: cid, TS: now.UnixMilli(),
		ReplyTo: extras.ReplyTo, Quote: extras.Quote, Attachments: extras.Attachments,
	})
	if kaiwa.IsCode(err, kaiwa.CodeUnavailable) {
		return m, &unknownOutcome{cid: cid, err: err}
	}
	if err == nil {
		ss.srv.met.published.WithLabelValues(string(ss.id.Tenant)).Inc()
	}
	return m, err
}

// unknownOutcome is a send that may or may not have been stored; its
// error reply names the cid to resend it with.
type unknownOutcome struct {
	cid string
	err error
}

func (u *unknownOutcome) Error() string { return u.err.Error() }
func (u *unknownOutcome) Unwrap() error { return u.err }

// filter applies the tenant's NG list and policy (reject: an ng_word error;
// mask: the masked text). Hits are logged and count towards escalation.
func (ss *session) filter(ctx context.Context, ch, text string, now time.Time) (string, error) {
	if text == "" || ss.srv.cfg.CompileNG == nil {
		return text, nil
	}
	ng, err := ss.tenant.matcher(ctx)
	if err != nil {
		return "", err
	}
	if ng.m == nil {
		return text, nil
	}
	out, hit, err := ng.m.Apply(text, ng.policy)
	if !hit {
		return out, nil
	}
	typ, kind, action := kaiwa.EventNGMasked, stats.NGMasked, "masked"
	if err != nil {
		typ, kind, action = kaiwa.EventNGBlocked, stats.NGBlocked, "blocked"
	}
	ss.srv.met.ng.WithLabelValues(string(ss.id.Tenant), action).Inc()
	ss.srv.cfg.Stats.Add(ss.id.Tenant, kind, 1)
	ss.srv.cfg.Recorder.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: typ, User: ss.id.User, Channel: ch, TS: now.UnixMilli()})
	ss.escalate(now)
	return out, err
}

// escalate counts an NG hit and mutes the user when the tenant's threshold
// is reached.
func (ss *session) escalate(now time.Time) {
	if ss.srv.cfg.Moderation == nil || !ss.tenant.ngHit(ss.id.User, now) {
		return
	}
	st := ss.settings()
	until := now.Add(time.Duration(st.NGEscalateMuteS) * time.Second)
	// Mute this session at once; the control from the moderator mutes the
	// user's other sessions everywhere.
	ss.setMute(until, "repeated NG words")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := ss.srv.cfg.Moderation.Sanction(ctx, kaiwa.Sanction{
			Tenant: ss.id.Tenant, User: ss.id.User, Kind: kaiwa.SanctionMute, Until: until,
			Reason: "repeated NG words",
		})
		if err != nil {
			ss.srv.log.Warn("NG escalation mute", "tenant", ss.id.Tenant, "user", ss.id.User, "err", err)
		}
	}()
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
	msgs = ss.withoutBlocked(msgs)
	out := versions.OutHistory{Op: "history", Ref: c.Ref, Ch: c.Ch, Messages: make([]json.RawMessage, len(msgs))}
	for i := range msgs {
		out.Messages[i] = ss.codec.EncodeMessage(&msgs[i])
	}
	return out, nil
}
