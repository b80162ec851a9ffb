package ua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/kaiwa-chat/kaiwa/ua/internal/outbox"
	"github.com/kaiwa-chat/kaiwa/versions"
	"golang.org/x/time/rate"
)

// Close codes of the wire contract beyond the standard ones.
const (
	StatusUnauthorized  websocket.StatusCode = 4001
	StatusForbidden     websocket.StatusCode = 4003
	StatusSlowConsumer                       = outbox.StatusSlowConsumer // 4008
	StatusRateLimited   websocket.StatusCode = 4029
	statusTryAgainLater websocket.StatusCode = 1013
)

// slowNotice is the op a slow consumer gets before its close.
var slowNotice = versions.OutClosing{Op: "closing", Code: int(StatusSlowConsumer), Reason: "slow consumer"}

// session is one client connection. The reader (serve) owns everything but
// the fields under mu and the outbox, which owns the connection's write
// side.
type session struct {
	srv   *Server
	conn  *websocket.Conn
	codec versions.Codec
	// out is the session's one writer: everything sent to the client, and
	// the close, go through it.
	out      *outbox.Outbox
	lastPing atomic.Int64 // unix ns of the last ping sent
	pinging  atomic.Bool
	clock    *versions.Clock // v2's; nil for v1

	// Set by serve before the session is in any room; read-only after.
	id      kaiwa.Identity
	tenant  *tenantState
	limiter *rate.Limiter
	origin  string
	// mutedUntil is when the user's mute ends, in ms since the epoch: 0
	// when not muted, -1 until lifted.
	mutedUntil atomic.Int64
	muteReason atomic.Pointer[string] // why, when the mute gave a reason

	// Refused ops in the current abuse window, and when the RTT was last
	// reported (reader only).
	refused      int
	refusedSince time.Time
	rttSeen      time.Time
	rttStats     time.Time          // when the RTT was last given to the stats
	afterAuth    []versions.Command // ops sent in the auth frame after auth

	mu       sync.Mutex
	channels map[string]struct{} // joined channels; guarded by mu
	members  map[string]struct{} // channels the user is a member of, as far as known; guarded by mu
	// positions is each joined channel's position when the session joined
	// it (what a v2 client resumes from if it sees no message there
	// first); guarded by mu.
	positions map[string]uint64

	// While a v2 resume replays history, live messages of the channels
	// being replayed wait in gate (guarded by mu) so they follow the
	// replay in order. A replay read from the stream can run ahead of
	// live delivery: marks (guarded by mu) holds, per channel, the last
	// seq replayed, and live copies up to it are dropped when they come.
	replaying atomic.Bool
	gate      map[string][]gated
	gateBytes int // held in gate, over every channel
	marks     map[string]uint64

	// players is the state of what the player does besides sending
	// (ua/players.go): the users it blocks, read by the fan-out without
	// a lock.
	players playerState
}

// gated is a live message held back during a replay.
type gated struct {
	seq uint64
	b   []byte
}

func newSession(s *Server, conn *websocket.Conn, out *outbox.Outbox, clock *versions.Clock) *session {
	ss := &session{
		srv:       s,
		conn:      conn,
		out:       out,
		codec:     s.codec,
		clock:     clock,
		channels:  make(map[string]struct{}),
		members:   make(map[string]struct{}),
		positions: make(map[string]uint64),
	}
	ss.lastPing.Store(time.Now().UnixNano())
	return ss
}

// enqueue sends b (see [outbox.Prepare]) without ever blocking. A client
// whose outbox is full is closed as a slow consumer.
func (ss *session) enqueue(b []byte) {
	if err := ss.out.Send(b); errors.Is(err, outbox.ErrFull) {
		ss.countSlow()
	}
}

// countSlow counts the session's close as a slow consumer.
func (ss *session) countSlow() {
	ss.srv.met.slow.Inc()
	if ss.id.Tenant != "" {
		ss.srv.cfg.Stats.Add(ss.id.Tenant, stats.SlowCloses, 1)
	}
}

// counted counts the session, once ready, among its tenant's open ones
// (open 1) or takes it out again (open -1).
func (ss *session) counted(open int) {
	t, v := string(ss.id.Tenant), ss.srv.cfg.Version.Name
	ss.srv.met.tenantSess.WithLabelValues(t, v).Add(float64(open))
	ss.srv.cfg.Stats.Session(ss.id.Tenant, v, open)
}

// deliver queues an encoded chat or system message, holding it back while
// its channel is being replayed.
func (ss *session) deliver(m *kaiwa.Message, b []byte) {
	if ss.replaying.Load() {
		ss.mu.Lock()
		if held, ok := ss.gate[m.Channel]; ok {
			if ss.gateBytes+len(b) > ss.srv.cfg.SendQueueBytes {
				ss.mu.Unlock()
				ss.closeSlow()
				return
			}
			ss.gate[m.Channel] = append(held, gated{m.Seq, b})
			ss.gateBytes += len(b)
			ss.mu.Unlock()
			return
		}
		if mark, ok := ss.marks[m.Channel]; ok {
			if m.Seq <= mark {
				ss.mu.Unlock()
				return // the replay sent it already
			}
			delete(ss.marks, m.Channel) // live has caught up
			ss.stopReplayingLocked()
		}
		ss.mu.Unlock()
	}
	ss.enqueue(b)
}

// stopReplayingLocked ends the replay's checks on live messages once no
// channel needs them. Call with mu held.
func (ss *session) stopReplayingLocked() {
	if len(ss.gate) == 0 && len(ss.marks) == 0 {
		ss.replaying.Store(false)
	}
}

// closeSlow closes the session as a slow consumer.
func (ss *session) closeSlow() {
	if !ss.out.Closing() {
		ss.countSlow()
	}
	ss.closeWith(StatusSlowConsumer, "slow consumer", slowNotice)
}

// send encodes and queues one op.
func (ss *session) send(op any) { ss.enqueue(outbox.Prepare(ss.codec, ss.codec.EncodeOp(op))) }

// sendError queues an error reply. Internal errors are logged here and
// reach the client without their details.
func (ss *session) sendError(ref string, err error) {
	ss.srv.met.error(kaiwa.ErrorCode(err))
	if kaiwa.ErrorCode(err) == kaiwa.CodeInternal {
		ss.srv.log.Error("session op failed", "tenant", ss.id.Tenant, "user", ss.id.User, "err", err)
	}
	e := versions.NewError(ref, err)
	if u, ok := errors.AsType[*unknownOutcome](err); ok {
		e.CID = u.cid
	}
	if r, ok := errors.AsType[*retryAfter](err); ok {
		e.RetryAfterMS = int(r.after.Milliseconds())
	}
	ss.send(e)
}

// closeWith closes the session: the outbox sends what it holds, then the
// notices (ops, in order), then the close with code. Only the first call
// counts.
func (ss *session) closeWith(code websocket.StatusCode, reason string, notices ...any) {
	if ss.out.Closing() {
		return
	}
	var ops [][]byte
	for _, n := range notices {
		if n != nil {
			ops = append(ops, ss.codec.EncodeOp(n))
		}
	}
	ss.out.Close(code, reason, ops...)
}

// failWith closes the session after replying with an error op.
func (ss *session) failWith(code websocket.StatusCode, ref string, err error) {
	ss.closeWith(code, string(kaiwa.ErrorCode(err)), versions.NewError(ref, err))
}

// wait blocks until the connection is closed.
func (ss *session) wait() { <-ss.out.Done() }

// ping sends a WebSocket ping and waits for the pong. A session that answers
// none within two intervals is dropped: its peer is gone. The server's
// pinger calls it (see Server.pinger).
func (ss *session) ping() {
	if !ss.pinging.CompareAndSwap(false, true) {
		return // the previous ping is still waiting
	}
	defer ss.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*ss.srv.cfg.PingInterval)
	defer cancel()
	if err := ss.conn.Ping(ctx); err != nil && !ss.out.Closing() {
		_ = ss.conn.CloseNow()
	}
}

// serve runs the session on its own goroutine: authentication, then the
// read loop. id is set when the upgrade request carried a token.
func (ss *session) serve(id *grant) {
	// Ops run one at a time on the reader and bound their own calls, so
	// nothing is left in flight to cancel when the session ends.
	ctx := context.Background()
	var resume map[string]uint64
	var ref string
	if id == nil {
		g, auth, err := ss.firstFrameAuth(ctx)
		if err != nil {
			ss.refuse(ctx, auth.Ref, err)
			return
		}
		id, resume, ref = &g, auth.Resume, auth.Ref
	}
	if err := ss.start(ctx, *id, resume); err != nil {
		ss.refuse(ctx, ref, err)
		return
	}
	// Reading goes on in a fresh goroutine: authentication grew this one's
	// stack, and an idle session should keep only what its read loop needs.
	go ss.run(ctx)
}

// refuse ends a session that could not start: the error op, the close
// code for it, and the cleanup of whatever start had set up.
func (ss *session) refuse(ctx context.Context, ref string, err error) {
	ss.failWith(authCloseCode(err), ref, err)
	ss.leaveAll()
	ss.drainReads(ctx)
	ss.wait()
	if ss.tenant != nil {
		ss.srv.releaseTenant(ss.tenant)
	}
	ss.srv.untrack(ss)
}

// run is the rest of the session's life: the ops that came with auth,
// the read loop, then leaving.
func (ss *session) run(ctx context.Context) {
	defer ss.srv.untrack(ss)
	if ss.runOps(ctx, ss.afterAuth) {
		ss.afterAuth = nil
		ss.readLoop(ctx)
	}
	ss.closeWith(websocket.StatusNormalClosure, "")
	ss.leaveAll()
	ss.wait()
	ss.counted(-1)
	ss.srv.releaseTenant(ss.tenant)
	ev := kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventDisconnect, User: ss.id.User}
	if rtt, ok := ss.clock.RTT(); ok {
		ev.Detail = json.RawMessage(fmt.Sprintf(`{"rtt_ms":%d}`, rtt.Milliseconds()))
	}
	ss.srv.cfg.Recorder.Record(ev)
}

// observeRTT reports the session's round-trip time to the metrics, at most
// once per interval, and to the tenant's stats at most once a second.
func (ss *session) observeRTT(now time.Time) {
	if now.Sub(ss.rttStats) < time.Second {
		return
	}
	rtt, ok := ss.clock.RTT()
	if !ok {
		return
	}
	ss.rttStats = now
	ss.srv.cfg.Stats.RTT(ss.id.Tenant, rtt)
	if now.Sub(ss.rttSeen) >= ss.srv.met.rttEvery {
		ss.rttSeen = now
		ss.srv.met.rtt.WithLabelValues(string(ss.id.Tenant)).Observe(rtt.Seconds())
	}
}

// settings returns the tenant's current settings.
func (ss *session) settings() kaiwa.Settings { return ss.tenant.Settings() }

// muteText says until when and why the user is muted.
func (ss *session) muteText(until time.Time) string {
	reason := ""
	if r := ss.muteReason.Load(); r != nil {
		reason = *r
	}
	return sanctionText("muted", until, reason)
}

// mutedNow reports whether the user is muted at now, and until when (zero:
// until lifted).
func (ss *session) mutedNow(now time.Time) (time.Time, bool) {
	switch u := ss.mutedUntil.Load(); {
	case u == -1:
		return time.Time{}, true
	case u > now.UnixMilli():
		return time.UnixMilli(u), true
	}
	return time.Time{}, false
}

func (ss *session) setMute(until time.Time, reason string) {
	ss.muteReason.Store(&reason)
	if until.IsZero() {
		ss.mutedUntil.Store(-1)
	} else {
		ss.mutedUntil.Store(until.UnixMilli())
	}
}

// drainReads keeps reading (and discarding) until the close handshake
// ends, so the writer's Close sees the peer's close frame.
func (ss *session) drainReads(ctx context.Context) {
	for {
		if _, _, err := ss.conn.Read(context.Background()); err != nil {
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
func (ss *session) firstFrameAuth(ctx context.Context) (grant, versions.Command, error) {
	timer := time.AfterFunc(ss.srv.cfg.AuthTimeout, func() {
		ss.failWith(StatusUnauthorized, "", kaiwa.Errorf(kaiwa.CodeUnauthorized, "no auth frame within %s", ss.srv.cfg.AuthTimeout))
	})
	defer timer.Stop()
	typ, data, err := ss.conn.Read(context.Background())
	if err != nil {
		return grant{}, versions.Command{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "no auth frame within %s", ss.srv.cfg.AuthTimeout)
	}
	if typ != websocket.MessageText {
		return grant{}, versions.Command{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "authenticate first with an auth op")
	}
	cmds, ref, err := ss.codec.DecodeFrame(nil, data, ss.clock)
	if err != nil || len(cmds) == 0 || cmds[0].Op != versions.OpAuth {
		return grant{}, versions.Command{Ref: ref}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "authenticate first with an auth op")
	}
	// The ops after auth in the same envelope (v2) run in order once the
	// session is ready.
	ss.afterAuth = cmds[1:]
	rctx, cancel := context.WithTimeout(ctx, ss.srv.cfg.AuthTimeout)
	defer cancel()
	id, err := ss.srv.resolve(rctx, cmds[0].Token)
	return id, cmds[0], err
}

// start sets the session's identity, checks what the tenant allows,
// registers the session with the hub, joins the user's member channels and
// sends ready.
func (ss *session) start(ctx context.Context, g grant, resume map[string]uint64) error {
	id := g.id
	ss.id = id
	v := ss.srv.cfg.Version
	if !v.Allows(id.Tenant) {
		return kaiwa.Errorf(kaiwa.CodeVersionNotAllowed, "protocol version %s is not available to this title", v.Name)
	}
	ts, err := ss.srv.acquireTenant(ctx, id.Tenant)
	if err != nil {
		return err
	}
	ss.tenant = ts
	st := ts.Settings()
	if !allowsVersion(st, v.Name) {
		return kaiwa.Errorf(kaiwa.CodeVersionNotAllowed, "this title does not allow protocol version %s", v.Name)
	}
	if !allowsOrigin(st, ss.origin) {
		return kaiwa.Errorf(kaiwa.CodeForbidden, "origin not allowed for this title")
	}
	sanctions := g.sanctions
	if !g.complete {
		if sanctions, err = ss.srv.cfg.Directory.Sanctions(ctx, id.Tenant, id.User); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, sn := range sanctions {
		if !sn.Active(now) {
			continue
		}
		switch sn.Kind {
		case kaiwa.SanctionBan:
			return kaiwa.Errorf(kaiwa.CodeBanned, "%s", sanctionText("banned", sn.Until, sn.Reason))
		case kaiwa.SanctionMute:
			ss.setMute(sn.Until, sn.Reason)
		}
	}
	ss.limiter = rate.NewLimiter(rate.Limit(st.RateOps), st.RateBurst)
	max := st.MaxConnsPerUser
	if _, _, _, _, err := ss.srv.hub.enter(ss, roomKey{tenant: id.Tenant, name: id.User, user: true}, func(n int) error {
		if n >= max {
			return kaiwa.Errorf(kaiwa.CodeRateLimited, "too many connections for this user (limit %d)", max)
		}
		return nil
	}); err != nil {
		return err
	}
	resumed := ss.openGate(resume)
	member := g.channels
	if !g.complete {
		if member, err = ss.srv.cfg.Directory.MemberChannels(ctx, id.Tenant, id.User); err != nil {
			return err
		}
	}
	slices.Sort(member)
	for _, ch := range member {
		ss.setMember(ch, true)
	}
	for _, ch := range member {
		if len(ss.joinedList()) >= st.MaxChannelsPerConn {
			break
		}
		if err := ss.join(ch); err != nil {
			return err
		}
	}
	// Resumed channels are rejoined (when still allowed) before ready.
	var refused []error
	for _, ch := range resumed {
		if kaiwa.IsDM(ch) || kaiwa.IsInbox(ch) {
			continue
		}
		if err := ss.tryJoin(ctx, ch); err != nil {
			ss.closeGate(ch, 0)
			refused = append(refused, kaiwa.Errorf(kaiwa.ErrorCode(err), "resume %s: %s", ch, kaiwa.ErrorMessage(err)))
		}
	}
	joined := ss.joinedList()
	ready := versions.OutReady{
		Op: "ready", User: id.User, Name: id.Name, Channels: joined,
		Version: ss.srv.cfg.Version.Name, ServerTime: kaiwa.Now(),
	}
	ss.startPlayer(ctx, &ready, g.player)
	if ss.sequenced() {
		ready.Seqs = ss.startPositions(joined, resumed)
	}
	if v := ss.srv.cfg.Version; v.Status == versions.Deprecated {
		ready.Deprecated = &versions.Deprecation{Sunset: v.Sunset.UTC().Format(time.RFC3339)}
	}
	ss.send(ready)
	ss.srv.met.connects.WithLabelValues(string(id.Tenant)).Inc()
	ss.counted(1)
	for _, err := range refused {
		ss.sendError("", err)
	}
	ss.srv.cfg.Recorder.Record(kaiwa.Event{Tenant: id.Tenant, Type: kaiwa.EventConnect, User: id.User})
	ss.replay(ctx, resume)
	return nil
}

// sequenced reports whether the session's version numbers messages (v2,
// the version with clocks): its clients resume, and get positions.
func (ss *session) sequenced() bool { return ss.clock != nil }

// startPositions returns the positions of the joined channels that are
// not being resumed (a resumed channel's position is what its replay
// ends with), for v2's ready.
func (ss *session) startPositions(joined, resumed []string) map[string]uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make(map[string]uint64, len(joined))
	for _, ch := range joined {
		if pos, ok := ss.positions[ch]; ok && !slices.Contains(resumed, ch) {
			out[ch] = pos
		}
	}
	return out
}

// position returns a joined channel's position when the session joined
// it; ok is false when it was not known.
func (ss *session) position(ch string) (uint64, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	pos, ok := ss.positions[ch]
	return pos, ok
}

// joinedList returns the joined channels in name order.
func (ss *session) joinedList() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]string, 0, len(ss.channels))
	for ch := range ss.channels {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// MaxResumeChannels bounds the channels one resume may name.
const MaxResumeChannels = 100

// openGate starts holding back live messages of the channels a client
// resumes, and returns those channels in name order (invalid or
// foreign-direct names left out).
func (ss *session) openGate(resume map[string]uint64) []string {
	if len(resume) == 0 {
		return nil
	}
	chs := make([]string, 0, len(resume))
	for ch := range resume {
		if kaiwa.CheckChannel(ch) != nil || (kaiwa.IsDM(ch) || kaiwa.IsInbox(ch)) && !ss.ownDM(ch) {
			continue
		}
		chs = append(chs, ch)
	}
	slices.Sort(chs)
	if len(chs) > MaxResumeChannels {
		chs = chs[:MaxResumeChannels]
	}
	ss.mu.Lock()
	ss.gate = make(map[string][]gated, len(chs))
	for _, ch := range chs {
		ss.gate[ch] = nil
	}
	ss.mu.Unlock()
	ss.replaying.Store(true)
	return chs
}

// closeGate releases a channel's held-back messages newer than last (the
// last seq replayed) into the queue, in order, and lets later ones through
// directly. When the replay went beyond what has arrived live (it read the
// stream, which live delivery follows by a moment), the live copies up to
// last are dropped when they arrive.
func (ss *session) closeGate(ch string, last uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	held, ok := ss.gate[ch]
	if !ok {
		return
	}
	delete(ss.gate, ch)
	var live uint64 // the last seq that has arrived live
	for _, g := range held {
		ss.gateBytes -= len(g.b)
		live = max(live, g.seq)
		if g.seq > last {
			ss.enqueue(g.b)
		}
	}
	if last > live {
		if ss.marks == nil {
			ss.marks = make(map[string]uint64)
		}
		ss.marks[ch] = last
	}
	ss.stopReplayingLocked()
}

// replay sends each resumed channel's missed messages, then resumed, then
// the live messages held back meanwhile.
func (ss *session) replay(ctx context.Context, resume map[string]uint64) {
	ss.mu.Lock()
	chs := make([]string, 0, len(ss.gate))
	for ch := range ss.gate {
		chs = append(chs, ch)
	}
	ss.mu.Unlock()
	slices.Sort(chs)
	// What this resume may replay over all its channels: the per-connect
	// bound and what is left of the user's budget for the minute.
	left := ss.srv.cfg.MaxReplayPerConnect
	var chunk [][]byte
	for _, ch := range chs {
		after := resume[ch]
		msgs, recovered := ss.srv.hub.recent(ss.id.Tenant, ch, after)
		if !recovered {
			var err error
			msgs, recovered, err = ss.readReplay(ctx, ch, after)
			if err != nil {
				ss.srv.log.Warn("replay", "tenant", ss.id.Tenant, "ch", ch, "err", err)
				msgs, recovered = nil, false
			}
		}
		n := min(len(msgs), left)
		if n > 0 {
			n = ss.srv.replays.take(string(ss.id.Tenant), ss.id.User, n, time.Now())
		}
		if len(msgs) > n {
			// Past a bound: the newest that fit, and not recovered (the
			// client reads the rest with history if it wants it).
			msgs, recovered = msgs[len(msgs)-n:], false
		}
		left -= n
		last := after
		for len(msgs) > 0 {
			chunk = chunk[:0]
			for i := range min(len(msgs), replayChunk) {
				last = msgs[i].Seq
				if ss.hides(msgs[i].From) {
					continue
				}
				chunk = append(chunk, outbox.Prepare(ss.codec, ss.codec.EncodeMessage(&msgs[i])))
			}
			msgs = msgs[min(len(msgs), replayChunk):]
			if len(chunk) == 0 {
				continue
			}
			if !ss.sendWait(chunk) {
				return
			}
		}
		if !ss.sendWait([][]byte{outbox.Prepare(ss.codec, ss.codec.EncodeOp(versions.OutResumed{Op: "resumed", Ch: ch, Recovered: recovered}))}) {
			return
		}
		ss.srv.met.resumes.WithLabelValues(string(ss.id.Tenant), strconv.FormatBool(recovered)).Inc()
		ss.closeGate(ch, last)
	}
}

// readReplay reads a channel's messages after seq after from the stream
// for a resume. A read the bus cannot answer now (a NATS node restarting,
// the stream electing a leader) is tried again, backing off, for up to
// the write timeout: a resume that gives up reports recovered false, and
// the client would have to read the gap with history.
func (ss *session) readReplay(ctx context.Context, ch string, after uint64) ([]kaiwa.Message, bool, error) {
	deadline := time.Now().Add(ss.srv.cfg.WriteTimeout)
	wait := 50 * time.Millisecond
	for {
		msgs, recovered, err := ss.srv.cfg.Bus.Replay(ctx, ss.id.Tenant, ch, after, ss.srv.cfg.MaxReplay)
		if err == nil || !kaiwa.IsCode(err, kaiwa.CodeUnavailable) || time.Now().Add(wait).After(deadline) {
			return msgs, recovered, err
		}
		select {
		case <-ctx.Done():
			return nil, false, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// replayChunk is how many replayed messages are encoded and given to the
// outbox at once: a full v2 frame.
const replayChunk = versions.V2MaxBatch

// sendWait gives the outbox a replay's ops from the session's own
// goroutine, waiting for room up to the write timeout (a replay may be
// larger than the outbox). It reports false once the session is closing.
func (ss *session) sendWait(ops [][]byte) bool {
	err := ss.out.SendWait(ss.srv.cfg.WriteTimeout, ops...)
	clear(ops) // the outbox holds them now
	if errors.Is(err, outbox.ErrFull) {
		ss.countSlow()
	}
	return err == nil
}

// readLoop reads frames until the connection ends.
func (ss *session) readLoop(ctx context.Context) {
	var cmds []versions.Command
	for {
		// A context with no deadline: coder/websocket then arms nothing per
		// read. Closing the connection ends the read.
		typ, data, err := ss.conn.Read(context.Background())
		if err != nil {
			ss.readFailed(err)
			return
		}
		var ref string
		switch {
		case typ != websocket.MessageText:
			err = kaiwa.Errorf(kaiwa.CodeBadRequest, "binary frames are not supported")
		case len(data) > ss.srv.cfg.MaxFrame:
			err = kaiwa.Errorf(kaiwa.CodeTooLarge, "frame of %d bytes, the limit is %d", len(data), ss.srv.cfg.MaxFrame)
		default:
			cmds, ref, err = ss.codec.DecodeFrame(cmds[:0], data, ss.clock)
		}
		if err != nil {
			// A frame that is not a valid op takes from the rate like
			// one, so a flood of them ends like any flood (4029).
			if !ss.allow() {
				err = kaiwa.Errorf(kaiwa.CodeRateLimited, "too many ops, slow down")
			}
			if ss.closeAsked() {
				return
			}
			ss.sendError(ref, err)
			continue
		}
		ss.observeRTT(time.Now())
		if !ss.runOps(ctx, cmds) {
			return
		}
	}
}

// runOps executes the ops of one frame in order, each within the
// connection's rate. It reports false once the session's close has been
// asked for (a flood): nothing more is read or answered then.
func (ss *session) runOps(ctx context.Context, cmds []versions.Command) bool {
	for i := range cmds {
		if !ss.allow() {
			if ss.closeAsked() {
				return false
			}
			ss.sendError(cmds[i].Ref, kaiwa.Errorf(kaiwa.CodeRateLimited, "too many ops, slow down"))
			continue
		}
		ss.handle(ctx, &cmds[i])
	}
	return true
}

// readFailed closes the session after a read that failed for a reason of
// the client's making that the WebSocket library did not answer with a
// close of its own (an unmasked frame): 1002, protocol error. A connection
// that ended (EOF, closed, the peer's close) is closed as usual.
func (ss *session) readFailed(err error) {
	if peerGone(err) && !ss.closeAsked() {
		ss.out.Gone() // the close that follows skips the handshake
	}
	if websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) || ss.closeAsked() {
		return
	}
	if strings.Contains(err.Error(), "unmasked frame") {
		ss.closeWith(websocket.StatusProtocolError, "protocol error")
	}
}

// peerGone reports whether a read failed because the client's end of the
// connection closed without a close frame (a dropped network, a killed
// app): there is nobody to make a close handshake with.
func peerGone(err error) bool {
	return websocket.CloseStatus(err) == -1 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// closeAsked reports whether the session's close has been asked for.
func (ss *session) closeAsked() bool { return ss.out.Closing() }

// allow applies the per-connection rate limit; sustained abuse closes the
// session with 4029.
func (ss *session) allow() bool {
	if st := ss.settings(); ss.limiter.Limit() != rate.Limit(st.RateOps) || ss.limiter.Burst() != st.RateBurst {
		ss.limiter.SetLimit(rate.Limit(st.RateOps))
		ss.limiter.SetBurst(st.RateBurst)
	}
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

// setMember records whether the user is a member of ch.
func (ss *session) setMember(ch string, member bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if member {
		ss.members[ch] = struct{}{}
	} else {
		delete(ss.members, ch)
	}
}

// member reports whether the user is a member of ch, as far as the
// session knows: its membership when it started, and the live changes
// since.
func (ss *session) member(ch string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.members[ch]
	return ok
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
	limit := ss.settings().MaxChannelsPerConn
	added, n, pos, posOK, err := ss.srv.hub.enter(ss, roomKey{tenant: ss.id.Tenant, name: ch}, func(int) error {
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
	if posOK {
		ss.mu.Lock()
		ss.positions[ch] = pos
		ss.mu.Unlock()
	}
	if !added {
		return nil
	}
	ss.announce(ch, "join", false, n)
	ss.srv.cfg.Recorder.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventJoin, User: ss.id.User, Channel: ch})
	return nil
}

// leave exits channel ch; false if the session was not in it. gone says
// the session is ending ([kaiwa.Presence.Gone]).
func (ss *session) leave(ch string, gone bool) bool {
	ss.mu.Lock()
	_, ok := ss.channels[ch]
	delete(ss.channels, ch)
	delete(ss.positions, ch)
	ss.mu.Unlock()
	if !ok {
		return false
	}
	_, n := ss.srv.hub.exit(ss, roomKey{tenant: ss.id.Tenant, name: ch})
	ss.announce(ch, "leave", gone, n)
	ss.srv.cfg.Recorder.Record(kaiwa.Event{Tenant: ss.id.Tenant, Type: kaiwa.EventLeave, User: ss.id.User, Channel: ch})
	return true
}

// announce publishes a presence event unless the channel is larger than the
// tenant's presence limit (as far as this server can see: its local
// members). gone marks a leave because the session ended.
func (ss *session) announce(ch, event string, gone bool, localMembers int) {
	if localMembers > ss.settings().PresenceLimit {
		return
	}
	err := ss.srv.cfg.Bus.PublishPresence(context.Background(), kaiwa.Presence{
		Tenant: ss.id.Tenant, Channel: ch, User: ss.id.User, Name: ss.id.Name, Event: event, Gone: gone,
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
		ss.leave(ch, true)
	}
	if ss.id.User != "" {
		ss.srv.hub.exit(ss, roomKey{tenant: ss.id.Tenant, name: ss.id.User, user: true})
	}
}

// removed takes the session out of ch because the game server said so.
func (ss *session) removed(ch, reason string) {
	if ss.leave(ch, false) {
		ss.send(versions.OutLeft{Op: "left", Ch: ch, Reason: reason})
	}
}

// control applies a user-targeted live change.
func (ss *session) control(c kaiwa.Control) {
	switch c.Kind {
	case kaiwa.ControlMemberAdded:
		ss.setMember(c.Channel, true)
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
		ss.setMember(c.Channel, false)
		ss.removed(c.Channel, "removed")
	case kaiwa.ControlTokensRevoked:
		ss.closeWith(StatusUnauthorized, "token revoked", &versions.OutClosing{
			Op: "closing", Code: int(StatusUnauthorized), Reason: "token revoked",
		})
	case kaiwa.ControlKick:
		reason := "kicked"
		if c.Reason != "" {
			reason = "kicked: " + c.Reason
		}
		ss.closeForbidden(reason)
	case kaiwa.ControlBan:
		ss.closeForbidden(sanctionText("banned", c.Until, c.Reason))
	case kaiwa.ControlMute:
		ss.setMute(c.Until, c.Reason)
	case kaiwa.ControlUnmute:
		ss.mutedUntil.Store(0)
	case kaiwa.ControlMessageDeleted:
		ss.send(outDeleted{Op: "deleted", Ch: c.Channel, ID: c.ID})
	case kaiwa.ControlRead, kaiwa.ControlBlock, kaiwa.ControlUnblock:
		ss.playerControl(c)
	}
}

// sanctionText says what a sanction is, until when and why: "banned
// until 2026-12-08T10:00:00Z: cheating", "muted until lifted".
func sanctionText(what string, until time.Time, reason string) string {
	s := what + " until lifted"
	if !until.IsZero() {
		s = what + " until " + until.UTC().Format(time.RFC3339)
	}
	if reason != "" {
		s += ": " + reason
	}
	return s
}

// closeForbidden closes the session with 4003 (kick, ban). A WebSocket
// close reason is at most 123 bytes; the closing op carries it whole.
func (ss *session) closeForbidden(reason string) {
	short := reason
	if len(short) > 120 {
		short = short[:120]
		for !utf8.ValidString(short) {
			short = short[:len(short)-1]
		}
	}
	ss.closeWith(StatusForbidden, short, &versions.OutClosing{
		Op: "closing", Code: int(StatusForbidden), Reason: reason,
	})
}

// outDeleted tells clients a moderator removed a message.
type outDeleted struct {
	Op string `json:"op"`
	Ch string `json:"ch"`
	ID string `json:"id"`
}
