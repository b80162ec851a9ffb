package ua

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/ua/internal/outbox"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// playerState is a session's part of what its player does besides
// sending. blocks is read by the fan-out without a lock (copy on write
// under mu); blockedBy (guarded by mu) remembers, for a while, whether
// the recipients of the user's direct messages block the user; typed is
// the reader's own.
type playerState struct {
	blocks    atomic.Pointer[map[string]struct{}] // nil: blocks nobody
	mu        sync.Mutex
	blockedBy map[string]blockedBy
	typed     map[string]time.Time
}

// blockedBy is whether a user blocks the session's user, as of at.
type blockedBy struct {
	blocked bool
	at      time.Time
}

// blockedByTTL is how long an answer of [session.checkNotBlocked] is
// kept; a change of it reaches the session live before.
const blockedByTTL = 30 * time.Second

// typingEvery is how often one session's typing in a channel is passed
// on; the ops between are answered and dropped.
const typingEvery = 2 * time.Second

// hides reports whether the session's user blocks user: what user says
// is not delivered to it. It takes no lock and allocates nothing, for the
// fan-out.
func (ss *session) hides(user string) bool {
	p := ss.players.blocks.Load()
	if p == nil || user == "" {
		return false
	}
	_, ok := (*p)[user]
	return ok
}

// setBlocks replaces the users the session's user blocks.
func (ss *session) setBlocks(users []string) {
	ss.players.mu.Lock()
	defer ss.players.mu.Unlock()
	if len(users) == 0 {
		ss.players.blocks.Store(nil)
		return
	}
	m := make(map[string]struct{}, len(users))
	for _, u := range users {
		m[u] = struct{}{}
	}
	ss.players.blocks.Store(&m)
}

// block adds (or with unblock, removes) one user of the set.
func (ss *session) block(user string, unblock bool) {
	ss.players.mu.Lock()
	defer ss.players.mu.Unlock()
	var m map[string]struct{}
	if p := ss.players.blocks.Load(); p != nil {
		m = maps.Clone(*p)
	} else {
		m = map[string]struct{}{}
	}
	if unblock {
		delete(m, user)
	} else {
		m[user] = struct{}{}
	}
	if len(m) == 0 {
		ss.players.blocks.Store(nil)
		return
	}
	ss.players.blocks.Store(&m)
}

// withoutBlocked returns msgs without those of users the session's user
// blocks (history, search).
func (ss *session) withoutBlocked(msgs []kaiwa.Message) []kaiwa.Message {
	if ss.players.blocks.Load() == nil {
		return msgs
	}
	out := msgs[:0]
	for _, m := range msgs {
		if !ss.hides(m.From) {
			out = append(out, m)
		}
	}
	return out
}

// startPlayer adds to ready what the session's user's state says: the
// users it blocks (which the session hides from then on) and each joined
// channel's unread count. known is the state the session lookup brought
// (nil: none); it serves when it counts every joined channel, else the
// state is asked for. A directory that does not answer in time leaves them
// out; the client may ask with the unread op.
func (ss *session) startPlayer(ctx context.Context, ready *versions.OutReady, known *kaiwa.PlayerStart) {
	p := ss.srv.cfg.Players
	if p == nil {
		return
	}
	chs := ss.channelsList()
	st, ok := coveredStart(known, chs)
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		if st, err = p.Start(ctx, ss.id.Tenant, ss.id.User, chs); err != nil {
			ss.srv.log.Warn("player state", "tenant", ss.id.Tenant, "user", ss.id.User, "err", err)
			return
		}
	}
	ss.setBlocks(st.Blocks)
	ready.Blocks = st.Blocks
	ready.Unread = ss.unreadCounts(st.Unread)
}

// coveredStart returns the part of known that counts chs, and whether
// known counts every one of them.
func coveredStart(known *kaiwa.PlayerStart, chs []string) (kaiwa.PlayerStart, bool) {
	if known == nil {
		return kaiwa.PlayerStart{}, false
	}
	byCh := make(map[string]kaiwa.Unread, len(known.Unread))
	for _, u := range known.Unread {
		byCh[u.Channel] = u
	}
	st := kaiwa.PlayerStart{Blocks: known.Blocks, Unread: make([]kaiwa.Unread, 0, len(chs))}
	for _, ch := range chs {
		u, ok := byCh[ch]
		if !ok {
			return kaiwa.PlayerStart{}, false
		}
		st.Unread = append(st.Unread, u)
	}
	return st, true
}

// channelsList returns the joined channels that are not direct or inbox
// channels ([kaiwa.SharedChannels]).
func (ss *session) channelsList() []string { return kaiwa.SharedChannels(ss.joinedList()) }

// unreadCounts turns counts into the wire's map, with each channel's
// position where the session knows it.
func (ss *session) unreadCounts(list []kaiwa.Unread) map[string]versions.UnreadCount {
	out := make(map[string]versions.UnreadCount, len(list))
	for _, u := range list {
		c := versions.UnreadCount{Count: u.Count, Read: u.Read}
		if pos, ok := ss.position(u.Channel); ok {
			c.Last = pos
		}
		out[u.Channel] = c
	}
	return out
}

// playerControl applies a live change of the player's state.
func (ss *session) playerControl(c kaiwa.Control) {
	switch c.Kind {
	case kaiwa.ControlRead:
		if c.User == ss.id.User {
			ss.send(versions.OutRead{Op: "read", Ch: c.Channel, Seq: c.Seq})
		}
	case kaiwa.ControlBlock, kaiwa.ControlUnblock:
		unblock := c.Kind == kaiwa.ControlUnblock
		if c.User == ss.id.User {
			ss.block(c.Other, unblock)
		}
		if c.Other == ss.id.User {
			ss.players.mu.Lock()
			if ss.players.blockedBy == nil {
				ss.players.blockedBy = map[string]blockedBy{}
			}
			ss.players.blockedBy[c.User] = blockedBy{blocked: !unblock, at: time.Now()}
			ss.players.mu.Unlock()
		}
	}
}

// checkNotBlocked refuses a direct message to a user who blocks the
// session's user ([kaiwa.CodeBlocked]).
func (ss *session) checkNotBlocked(ctx context.Context, to string) error {
	p := ss.srv.cfg.Players
	if p == nil {
		return nil
	}
	now := time.Now()
	ss.players.mu.Lock()
	b, ok := ss.players.blockedBy[to]
	ss.players.mu.Unlock()
	if !ok || now.Sub(b.at) > blockedByTTL {
		blocked, err := p.Blocking(ctx, ss.id.Tenant, to, ss.id.User)
		if err != nil {
			return err
		}
		b = blockedBy{blocked: blocked, at: now}
		ss.players.mu.Lock()
		if ss.players.blockedBy == nil {
			ss.players.blockedBy = map[string]blockedBy{}
		}
		ss.players.blockedBy[to] = b
		ss.players.mu.Unlock()
	}
	if b.blocked {
		return kaiwa.Errorf(kaiwa.CodeBlocked, "%s does not accept your direct messages", to)
	}
	return nil
}

// sayExtras are what a say adds to its text: the message it replies to,
// with a quote of it, and attachments.
type sayExtras struct {
	ReplyTo     string
	Quote       *kaiwa.Quote
	Attachments []kaiwa.Attachment
}

// sayExtras checks a say's reply and attachments: the replied message
// must be one of the same channel the stream holds.
func (ss *session) sayExtras(ctx context.Context, ch string, c *versions.Command) (sayExtras, error) {
	var x sayExtras
	if err := kaiwa.CheckAttachments(c.Attachments, ss.settings()); err != nil {
		return x, err
	}
	x.Attachments = c.Attachments
	if c.ReplyTo == "" {
		return x, nil
	}
	if len(c.ReplyTo) > kaiwa.MaxRefLen {
		return x, kaiwa.Errorf(kaiwa.CodeBadRequest, "reply_to is not a message id")
	}
	stream := ss.srv.stream()
	if stream == nil {
		return x, kaiwa.Errorf(kaiwa.CodeUnavailable, "replies are not available")
	}
	orig, err := stream.Message(ctx, ss.id.Tenant, ch, c.ReplyTo)
	if kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		return x, kaiwa.Errorf(kaiwa.CodeBadRequest, "reply_to is not a message of this channel")
	}
	if err != nil {
		return x, err
	}
	x.ReplyTo, x.Quote = orig.ID, kaiwa.NewQuote(orig)
	return x, nil
}

// stream returns the server's reader of single messages.
func (s *Server) stream() kaiwa.StreamReader {
	if s.cfg.Stream != nil {
		return s.cfg.Stream
	}
	r, _ := s.cfg.Bus.(kaiwa.StreamReader)
	return r
}

// deliverChange fans a change entry (an edit, a reaction) out to a
// channel room's sessions: encoded once, like a message; an edit by a
// user a session blocks is not delivered to it. Changes do not go
// through the feed (their own sequence has gaps a message's does not
// show): a session that missed one gets it on resume, or in history.
func (h *hub) deliverChange(r *room, m *kaiwa.Message) {
	r.recentMu.Lock()
	r.changed = max(r.changed, m.Seq)
	r.recentMu.Unlock()
	codec := h.srv.codec
	b := outbox.Prepare(codec, codec.EncodeMessage(m))
	from := m.From
	if m.Kind == kaiwa.KindReaction {
		from = "" // counts are everyone's
	}
	h.fanOut(r.sessions(), func(ss *session) {
		if !ss.hides(from) {
			ss.deliver(m, b)
		}
	})
}

// handlePlayer executes one of the ops of what players do besides
// sending.
func (ss *session) handlePlayer(ctx context.Context, c *versions.Command) (any, error) {
	p := ss.srv.cfg.Players
	if p == nil && c.Op != versions.OpTyping {
		return nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "%s is not available on this server", c.Op)
	}
	t, user := ss.id.Tenant, ss.id.User
	switch c.Op {
	case versions.OpEdit:
		if err := ss.canChange(c); err != nil {
			return nil, err
		}
		now := time.Now()
		if until, ok := ss.mutedNow(now); ok {
			return nil, kaiwa.Errorf(kaiwa.CodeMuted, "%s", ss.muteText(until))
		}
		if err := kaiwa.CheckContent(c.Text, nil, ss.settings()); err != nil {
			return nil, err
		}
		text, err := ss.filter(ctx, c.Ch, c.Text, now)
		if err != nil {
			return nil, err
		}
		m, err := p.EditMessage(ctx, t, user, c.Ch, c.ID, text)
		if err != nil {
			return nil, err
		}
		return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch, ID: c.ID, Seq: m.Seq}, nil
	case versions.OpDelete:
		if err := ss.canChange(c); err != nil {
			return nil, err
		}
		if err := p.DeleteOwnMessage(ctx, t, user, c.Ch, c.ID); err != nil {
			return nil, err
		}
		return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch, ID: c.ID}, nil
	case versions.OpReact, versions.OpUnreact:
		if err := ss.canChange(c); err != nil {
			return nil, err
		}
		if err := kaiwa.CheckEmoji(c.Emoji, ss.settings()); err != nil {
			return nil, err
		}
		m, err := p.React(ctx, t, user, c.Ch, c.ID, c.Emoji, c.Op == versions.OpUnreact)
		if err != nil {
			return nil, err
		}
		return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch, ID: c.ID, Seq: m.Seq}, nil
	case versions.OpRead:
		if err := ss.canRead(c.Ch); err != nil {
			return nil, err
		}
		cur, err := p.MarkRead(ctx, t, user, c.Ch, c.Seq)
		if err != nil {
			return nil, err
		}
		return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch, Seq: cur.Seq}, nil
	case versions.OpUnread:
		chs := ss.channelsList()
		if c.Ch != "" {
			if err := ss.canRead(c.Ch); err != nil {
				return nil, err
			}
			chs = []string{c.Ch}
		}
		list, err := p.Unread(ctx, t, user, chs)
		if err != nil {
			return nil, err
		}
		return versions.OutUnread{Op: "unread", Ref: c.Ref, Unread: ss.unreadCounts(list)}, nil
	case versions.OpBlock, versions.OpUnblock:
		if err := kaiwa.CheckID("user", c.User); err != nil {
			return nil, err
		}
		if c.User == user {
			return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "a user cannot block themselves")
		}
		unblock := c.Op == versions.OpUnblock
		if err := p.Block(ctx, t, user, c.User, unblock); err != nil {
			return nil, err
		}
		ss.block(c.User, unblock)
		return versions.OutOK{Op: "ok", Ref: c.Ref}, nil
	case versions.OpTyping:
		return ss.opTyping(c)
	case versions.OpSearch:
		return ss.opSearch(ctx, p, c)
	}
	return nil, kaiwa.Errorf(kaiwa.CodeUnknownOp, "unknown op %.32q", c.Op)
}

// canChange checks an op about message c.ID of channel c.Ch: the session
// is in the channel (or it is one of the user's direct channels).
func (ss *session) canChange(c *versions.Command) error {
	if c.ID == "" || len(c.ID) > kaiwa.MaxRefLen {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "id is required")
	}
	return ss.canRead(c.Ch)
}

// canRead checks that the session may read channel ch.
func (ss *session) canRead(ch string) error {
	if err := kaiwa.CheckChannel(ch); err != nil {
		return err
	}
	if !ss.joined(ch) && !ss.ownDM(ch) {
		return kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
	}
	return nil
}

// opTyping passes on that the user is typing in a channel, over core
// NATS with the channel's presence (in a direct channel, to the other
// user: [kaiwa.Bus.PublishPresence]): never stored, logged or replayed.
// A session's typing in one channel goes out at most once per
// typingEvery.
func (ss *session) opTyping(c *versions.Command) (any, error) {
	if err := kaiwa.CheckChannel(c.Ch); err != nil {
		return nil, err
	}
	switch {
	case kaiwa.IsInbox(c.Ch):
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "typing is shown in channels and direct channels")
	case kaiwa.IsDM(c.Ch):
		if !ss.ownDM(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "not a direct channel of yours")
		}
		if !ss.id.CanPublish(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeForbidden, "your token does not permit direct messages to this user")
		}
	case !ss.joined(c.Ch):
		return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
	}
	now := time.Now()
	if last, ok := ss.players.typed[c.Ch]; !ok || now.Sub(last) >= typingEvery {
		if ss.players.typed == nil {
			ss.players.typed = map[string]time.Time{}
		}
		ss.players.typed[c.Ch] = now
		err := ss.srv.cfg.Bus.PublishPresence(context.Background(), kaiwa.Presence{
			Tenant: ss.id.Tenant, Channel: c.Ch, User: ss.id.User, Name: ss.id.Name, Event: kaiwa.PresenceTyping,
		})
		if err != nil {
			return nil, err
		}
	}
	return versions.OutOK{Op: "ok", Ref: c.Ref, Ch: c.Ch}, nil
}

// opSearch searches the channels the session is in (or one of them),
// newest first.
func (ss *session) opSearch(ctx context.Context, p kaiwa.Players, c *versions.Command) (any, error) {
	q := kaiwa.SearchQuery{Q: c.Q, Before: c.Before, Limit: c.Limit, Channels: ss.channelsList()}
	if c.Ch != "" {
		if err := kaiwa.CheckChannel(c.Ch); err != nil {
			return nil, err
		}
		if !ss.joined(c.Ch) || kaiwa.IsDM(c.Ch) {
			return nil, kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")
		}
		q.Channels = []string{c.Ch}
	}
	if err := q.Check(); err != nil {
		return nil, err
	}
	out := versions.OutSearch{Op: "search", Ref: c.Ref, Messages: []json.RawMessage{}}
	if len(q.Channels) == 0 {
		return out, nil
	}
	page, err := p.Search(ctx, ss.id.Tenant, q)
	if err != nil {
		return nil, err
	}
	for _, m := range ss.withoutBlocked(page.Messages) {
		out.Messages = append(out.Messages, ss.codec.EncodeMessage(&m))
	}
	out.Next = page.Next
	return out, nil
}
