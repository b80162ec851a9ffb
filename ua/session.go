package ua

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
	"golang.org/x/time/rate"
)

// Close codes of the wire contract beyond the standard ones.
const (
	StatusUnauthorized  websocket.StatusCode = 4001
	StatusForbidden     websocket.StatusCode = 4003
	StatusSlowConsumer  websocket.StatusCode = 4008
	StatusRateLimited   websocket.StatusCode = 4029
	statusTryAgainLater websocket.StatusCode = 1013
)

// session is one client connection. The reader (serve) owns everything but
// the fields under mu; the writer owns the connection's write side.
type session struct {
	srv   *Server
	conn  *websocket.Conn
	codec versions.Codec
	queue chan []byte

	closing     chan struct{}
	closeOnce   sync.Once
	closeCode   websocket.StatusCode
	closeReason string
	closeNotice []byte
	writerDone  chan struct{}
	pinging     atomic.Bool
	clock       *versions.Clock

	// Set by serve before the session is in any room; read-only after.
	id       kaiwa.Identity
	settings kaiwa.Settings
	limiter  *rate.Limiter

	// Refused ops in the current abuse window (reader only).
	refused      int
	refusedSince time.Time

	mu       sync.Mutex
	channels map[string]struct{} // joined channels; guarded by mu
}

func newSession(s *Server, conn *websocket.Conn) *session {
	return &session{
		srv:        s,
		conn:       conn,
		codec:      s.codec,
		queue:      make(chan []byte, s.cfg.SendQueue),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		channels:   make(map[string]struct{}),
		clock:      versions.NewClock(time.Now()),
	}
}

// enqueue queues encoded bytes for the writer without ever blocking. A full
// queue closes the session as a slow consumer.
func (ss *session) enqueue(b []byte) {
	select {
	case ss.queue <- b:
	default:
		ss.closeWith(StatusSlowConsumer, "slow consumer", &versions.OutClosing{
			Op: "closing", Code: int(StatusSlowConsumer), Reason: "slow consumer",
		})
	}
}

// send encodes and queues one op.
func (ss *session) send(op any) { ss.enqueue(ss.codec.EncodeOp(op)) }

// sendError queues an error reply. Internal errors are logged here and
// reach the client without their details.
func (ss *session) sendError(ref string, err error) {
	if kaiwa.ErrorCode(err) == kaiwa.CodeInternal {
		ss.srv.log.Error("session op failed", "tenant", ss.id.Tenant, "user", ss.id.User, "err", err)
	}
	ss.send(versions.NewError(ref, err))
}

// closeWith asks the writer to send notice (if any) and close the
// connection with code. Only the first call counts.
func (ss *session) closeWith(code websocket.StatusCode, reason string, notice any) {
	ss.closeOnce.Do(func() {
		ss.closeCode, ss.closeReason = code, reason
		if notice != nil {
			ss.closeNotice = ss.codec.EncodeOp(notice)
		}
		close(ss.closing)
	})
}

// failWith closes the session after replying with an error op.
func (ss *session) failWith(code websocket.StatusCode, ref string, err error) {
	ss.closeWith(code, string(kaiwa.ErrorCode(err)), versions.NewError(ref, err))
}

// wait blocks until the writer has closed the connection.
func (ss *session) wait() { <-ss.writerDone }

// serve runs the session on the connection's goroutine: authentication,
// then the read loop. id is set when the upgrade request carried a token.
func (ss *session) serve(id *kaiwa.Identity) {
	go ss.writeLoop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if id == nil {
		ident, ref, err := ss.firstFrameAuth(ctx)
		if err != nil {
			ss.failWith(authCloseCode(err), ref, err)
			ss.drainReads(ctx)
			ss.wait()
			return
		}
		id = &ident
	}
	if err := ss.start(ctx, *id); err != nil {
		ss.failWith(authCloseCode(err), "", err)
		ss.leaveAll()
		ss.drainReads(ctx)
		ss.wait()
		return
	}
	ss.readLoop(ctx)
	ss.closeWith(websocket.StatusNormalClosure, "", nil)
	ss.leaveAll()
	ss.wait()
	ss.srv.cfg.Bus.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventDisconnect, User: ss.id.User})
}

// drainReads keeps reading (and discarding) until the close handshake
// ends, so the writer's Close sees the peer's close frame.
func (ss *session) drainReads(ctx context.Context) {
	for {
		if _, _, err := ss.conn.Read(ctx); err != nil {
			return
		}
	}
}

func authCloseCode(err error) websocket.StatusCode {
	switch kaiwa.ErrorCode(err) {
	case kaiwa.CodeUnauthorized, kaiwa.CodeTokenExpired:
		return StatusUnauthorized
	case kaiwa.CodeForbidden, kaiwa.CodeBanned, kaiwa.CodeVersionNotAllowed:
		return StatusForbidden
	case kaiwa.CodeRateLimited:
		return StatusRateLimited
	case kaiwa.CodeBadRequest:
		return websocket.StatusPolicyViolation
	}
	return statusTryAgainLater
}

// firstFrameAuth reads the auth op of a client that could not send a
// header. The read itself has no deadline (a read whose context ends tears
// the connection down); a timer closes the session with 4001 instead, after
// an error op the client can read.
func (ss *session) firstFrameAuth(ctx context.Context) (kaiwa.Identity, string, error) {
	timer := time.AfterFunc(ss.srv.cfg.AuthTimeout, func() {
		ss.failWith(StatusUnauthorized, "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "no auth frame within %s", ss.srv.cfg.AuthTimeout))
	})
	defer timer.Stop()
	typ, data, err := ss.conn.Read(ctx)
	if err != nil {
		return kaiwa.Identity{}, "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "no auth frame within %s", ss.srv.cfg.AuthTimeout)
	}
	if typ != websocket.MessageText {
		return kaiwa.Identity{}, "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "authenticate first with an auth op")
	}
	cmds, ref, err := ss.codec.DecodeFrame(nil, data, ss.clock)
	if err != nil || len(cmds) != 1 || cmds[0].Op != versions.OpAuth {
		return kaiwa.Identity{}, ref, kaiwa.Errorf(kaiwa.CodeUnauthorized, "authenticate first with an auth op")
	}
	rctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.AuthTimeout)
	defer cancel()
	id, err := ss.srv.resolve(rctx, cmds[0].Token)
	return id, cmds[0].Ref, err
}

// start sets the session's identity, registers it with the hub, joins the
// user's member channels and sends ready.
func (ss *session) start(ctx context.Context, id kaiwa.Identity) error {
	ss.id = id
	st, err := ss.srv.cfg.Directory.TenantSettings(ctx, id.Tenant)
	if err != nil {
		return err
	}
	ss.settings = st.WithDefaults()
	ss.limiter = rate.NewLimiter(rate.Limit(ss.settings.RateOps), ss.settings.RateBurst)
	max := ss.settings.MaxConnsPerUser
	if _, _, err := ss.srv.hub.enter(ss, roomKey{tenant: id.Tenant, name: id.User, user: true}, func(n int) error {
		if n >= max {
			return kaiwa.Errorf(kaiwa.CodeRateLimited, "too many connections for this user (limit %d)", max)
		}
		return nil
	}); err != nil {
		return err
	}
	member, err := ss.srv.cfg.Directory.MemberChannels(ctx, id.Tenant, id.User)
	if err != nil {
		return err
	}
	slices.Sort(member)
	joined := make([]string, 0, len(member))
	for _, ch := range member {
		if len(joined) >= ss.settings.MaxChannelsPerConn {
			break
		}
		if err := ss.join(ch); err != nil {
			return err
		}
		joined = append(joined, ch)
	}
	ready := versions.OutReady{
		Op: "ready", User: id.User, Name: id.Name, Channels: joined,
		Version: ss.srv.cfg.Version.Name, ServerTime: kaiwa.Now(),
	}
	if v := ss.srv.cfg.Version; v.Status == versions.Deprecated {
		ready.Deprecated = &versions.Deprecation{Sunset: v.Sunset.UTC().Format(time.RFC3339)}
	}
	ss.send(ready)
	ss.srv.cfg.Bus.Record(kaiwa.Event{Tenant: id.Tenant, Type: kaiwa.EventConnect, User: id.User})
	return nil
}

// readLoop reads frames until the connection ends.
func (ss *session) readLoop(ctx context.Context) {
	var cmds []versions.Command
	for {
		typ, data, err := ss.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			ss.sendError("", kaiwa.Errorf(kaiwa.CodeBadRequest, "binary frames are not supported"))
			continue
		}
		if len(data) > ss.srv.cfg.MaxFrame {
			ss.sendError("", kaiwa.Errorf(kaiwa.CodeTooLarge, "frame of %d bytes, the limit is %d", len(data), ss.srv.cfg.MaxFrame))
			continue
		}
		var ref string
		cmds, ref, err = ss.codec.DecodeFrame(cmds[:0], data, ss.clock)
		if err != nil {
			ss.sendError(ref, err)
			continue
		}
		for i := range cmds {
			if !ss.allow() {
				ss.sendError(cmds[i].Ref, kaiwa.Errorf(kaiwa.CodeRateLimited, "too many ops, slow down"))
				continue
			}
			ss.handle(ctx, &cmds[i])
		}
	}
}

// allow applies the per-connection rate limit; sustained abuse closes the
// session with 4029.
func (ss *session) allow() bool {
	if ss.limiter.Allow() {
		return true
	}
	now := time.Now()
	if now.Sub(ss.refusedSince) > ss.srv.cfg.AbuseWindow {
		ss.refused, ss.refusedSince = 0, now
	}
	ss.refused++
	if ss.refused > ss.srv.cfg.AbuseLimit {
		ss.closeWith(StatusRateLimited, "rate limited", &versions.OutClosing{
			Op: "closing", Code: int(StatusRateLimited), Reason: "rate limited",
		})
	}
	return false
}

// joined reports whether the session is in channel ch.
func (ss *session) joined(ch string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.channels[ch]
	return ok
}

// join enters channel ch (no permission checks: callers do them) and
// announces the session's presence.
func (ss *session) join(ch string) error {
	limit := ss.settings.MaxChannelsPerConn
	added, n, err := ss.srv.hub.enter(ss, roomKey{tenant: ss.id.Tenant, name: ch}, func(int) error {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if len(ss.channels) >= limit {
			return kaiwa.Errorf(kaiwa.CodeTooLarge, "joined to %d channels, the limit", limit)
		}
		ss.channels[ch] = struct{}{}
		return nil
	})
	if err != nil {
		ss.mu.Lock()
		delete(ss.channels, ch)
		ss.mu.Unlock()
		return err
	}
	if !added {
		return nil
	}
	ss.announce(ch, "join", n)
	ss.srv.cfg.Bus.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventJoin, User: ss.id.User, Channel: ch})
	return nil
}

// leave exits channel ch; false if the session was not in it.
func (ss *session) leave(ch string) bool {
	ss.mu.Lock()
	_, ok := ss.channels[ch]
	delete(ss.channels, ch)
	ss.mu.Unlock()
	if !ok {
		return false
	}
	_, n := ss.srv.hub.exit(ss, roomKey{tenant: ss.id.Tenant, name: ch})
	ss.announce(ch, "leave", n)
	ss.srv.cfg.Bus.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventLeave, User: ss.id.User, Channel: ch})
	return true
}

// announce publishes a presence event unless the channel is larger than the
// tenant's presence limit (as far as this server can see: its local members).
func (ss *session) announce(ch, event string, localMembers int) {
	if localMembers > ss.settings.PresenceLimit {
		return
	}
	err := ss.srv.cfg.Bus.PublishPresence(context.Background(), kaiwa.Presence{
		Tenant: ss.id.Tenant, Channel: ch, User: ss.id.User, Name: ss.id.Name, Event: event,
	})
	if err != nil {
		ss.srv.log.Warn("publish presence", "err", err)
	}
}

// leaveAll removes the session from every room.
func (ss *session) leaveAll() {
	ss.mu.Lock()
	chs := make([]string, 0, len(ss.channels))
	for ch := range ss.channels {
		chs = append(chs, ch)
	}
	ss.mu.Unlock()
	for _, ch := range chs {
		ss.leave(ch)
	}
	if ss.id.User != "" {
		ss.srv.hub.exit(ss, roomKey{tenant: ss.id.Tenant, name: ss.id.User, user: true})
	}
}

// removed takes the session out of ch because the game server said so.
func (ss *session) removed(ch, reason string) {
	if ss.leave(ch) {
		ss.send(versions.OutLeft{Op: "left", Ch: ch, Reason: reason})
	}
}

// control applies a user-targeted live change.
func (ss *session) control(c kaiwa.Control) {
	switch c.Kind {
	case kaiwa.ControlMemberAdded:
		if ss.joined(c.Channel) {
			return
		}
		if err := ss.join(c.Channel); err != nil {
			if !errors.Is(err, context.Canceled) {
				ss.srv.log.Warn("live join", "tenant", ss.id.Tenant, "user", ss.id.User, "ch", c.Channel, "err", err)
			}
			return
		}
		ss.send(versions.OutJoined{Op: "joined", Ch: c.Channel})
	case kaiwa.ControlMemberRemoved:
		ss.removed(c.Channel, "removed")
	case kaiwa.ControlTokensRevoked:
		ss.closeWith(StatusUnauthorized, "token revoked", &versions.OutClosing{
			Op: "closing", Code: int(StatusUnauthorized), Reason: "token revoked",
		})
	}
}
