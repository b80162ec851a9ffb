package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// State is where a [Session] stands.
type State string

// The states of a [Session], reported by "state" events.
const (
	// StateConnecting: the first connection is being made.
	StateConnecting State = "connecting"
	// StateConnected: a connection is ready; requests go out at once.
	StateConnected State = "connected"
	// StateReconnecting: the connection was lost (or the server asked
	// for a reconnect); requests wait for the next one.
	StateReconnecting State = "reconnecting"
	// StateClosed: the session ended, by [Session.Close] or because the
	// server refused it for good (see [Session.Err]).
	StateClosed State = "closed"
)

// Defaults of [SessionOptions].
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// SessionOptions configure [Connect].
type SessionOptions struct {
	// Options are those of every connection ([Dial]); the Session sets
	// Resume itself.
	Options
	// GetToken, when set, is asked for a fresh token when the server
	// refuses the current one (expired or revoked), before the next
	// attempt. An error from it ends the session. Without it, a refused
	// token ends the session.
	GetToken func(ctx context.Context) (string, error)
	// MinBackoff and MaxBackoff bound the wait between attempts: a random
	// wait ("full jitter") between 0 and MinBackoff doubled once per
	// failed attempt, at most MaxBackoff. Defaults [DefaultMinBackoff]
	// and [DefaultMaxBackoff]. A server's "reconnect" or closing notice
	// with a delay is honoured instead.
	MinBackoff, MaxBackoff time.Duration
}

// Gap is a run of a channel's messages a [Session] knows it missed (v2):
// those after seq After up to the message with seq Before, which has
// just been delivered. Read them with [Session.History] if they matter.
type Gap struct {
	Ch     string
	After  uint64
	Before uint64
}

// Session is a connection to Kaiwa that survives disconnects: when its
// connection is lost, or the server asks it to reconnect, it dials again
// with backoff and full jitter, resumes every channel from the last
// sequence number it saw (v2) so that each missed message arrives once
// and in order, joins again the channels it had joined, and resends
// requests that were in flight with the same client message id, so that
// no message is sent twice. It is what a game client wants; [Dial] gives
// a single connection, for tools and tests.
//
// Events arrive on [Session.Events] as with a [Conn], plus "state" events
// (Event.State) and, in v2, "gap" events (Event.Gap) when a message shows
// that earlier ones of its channel were missed and could not be replayed.
// Messages already seen (by seq) are not delivered twice, nor are edits
// and reactions ("edited", "reaction") replayed after a resume that had
// come live before.
//
// A Session is safe for concurrent use. It runs one goroutine, which reads
// the current connection's events and reconnects.
type Session struct {
	url    string
	opts   SessionOptions
	v2     bool
	events chan Event
	done   chan struct{}

	mu      sync.Mutex
	conn    *Conn         // the current connection; nil while reconnecting
	ready   chan struct{} // closed when conn is set; guarded by mu
	state   State
	seqs    map[string]uint64 // the last seq seen per channel
	pos     map[string]uint64 // where a channel stood when joined, while no message of it came
	joined  map[string]bool   // channels joined with Join
	changes map[string]uint64 // the last seq of an edit or reaction seen per channel
	last    Ready             // what the latest connection's ready said
	closing bool              // Close was called
	err     error             // why the session ended
	stop    context.CancelFunc
}

// Connect dials rawURL (as [Dial]) and returns a [Session] that keeps
// reconnecting until [Session.Close]. The first connection is retried
// like any other until ctx ends; a token or version the server refuses
// for good fails at once.
func Connect(ctx context.Context, rawURL string, opts SessionOptions) (*Session, error) {
	version, err := urlVersion(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	n := opts.EventBuffer
	if n <= 0 {
		n = DefaultEventBuffer
	}
	bg, stop := context.WithCancel(context.Background())
	s := &Session{
		url: rawURL, opts: opts, v2: version != "v1",
		events: make(chan Event, n), done: make(chan struct{}),
		ready: make(chan struct{}), state: StateConnecting,
		seqs: map[string]uint64{}, pos: map[string]uint64{}, joined: map[string]bool{}, changes: map[string]uint64{}, stop: stop,
	}
	maps.Copy(s.seqs, opts.Resume)
	s.emit(Event{Op: "state", State: StateConnecting})
	conn, err := s.dial(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	s.setConn(conn)
	go s.run(bg, conn)
	return s, nil
}

// dial makes connections until one is ready, ctx ends, or the server
// refuses the session for good.
func (s *Session) dial(ctx context.Context) (*Conn, error) {
	attempt := 0
	for {
		s.mu.Lock()
		opts := s.opts.Options
		s.mu.Unlock()
		opts.Resume = nil
		if s.v2 {
			opts.Resume = s.resumeMap()
		}
		conn, err := Dial(ctx, s.url, opts)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch kaiwa.ErrorCode(err) {
		case kaiwa.CodeUnauthorized, kaiwa.CodeTokenExpired:
			if s.opts.GetToken == nil {
				return nil, err
			}
			tok, terr := s.opts.GetToken(ctx)
			if terr != nil {
				return nil, fmt.Errorf("client: get token: %w (after %w)", terr, err)
			}
			s.mu.Lock()
			s.opts.Token = tok
			s.mu.Unlock()
		case kaiwa.CodeBanned, kaiwa.CodeForbidden, kaiwa.CodeVersionNotAllowed, kaiwa.CodeBadRequest, kaiwa.CodeNotFound:
			return nil, err // no retry can change it
		}
		if !sleepCtx(ctx, s.backoff(attempt)) {
			return nil, ctx.Err()
		}
		attempt++
	}
}

// resumeMap names every channel with a seq seen, or, for a channel that
// was quiet since it was joined, the position it was joined at. (A channel
// with neither is joined again instead: resuming it from 0 would replay
// its whole history.)
func (s *Session) resumeMap() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.seqs)+len(s.pos))
	maps.Copy(out, s.pos) // 0 included: the channel had no message
	for ch, seq := range s.seqs {
		if seq > 0 {
			out[ch] = seq
		}
	}
	return out
}

// noteStart records the positions a new connection's ready gives for the
// channels with no message seen.
func (s *Session) noteStart(conn *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, seq := range conn.Ready().Seqs {
		s.notePosLocked(ch, seq)
	}
}

// notePosLocked records where ch stood when joined (0: it had no
// message), unless a message of it was seen. Call with mu held.
func (s *Session) notePosLocked(ch string, seq uint64) {
	if _, seen := s.seqs[ch]; !seen {
		s.pos[ch] = seq
	}
}

// backoff is the full-jitter wait before attempt n+1.
func (s *Session) backoff(n int) time.Duration {
	ceil := s.opts.MinBackoff << min(n, 20)
	if ceil <= 0 || ceil > s.opts.MaxBackoff {
		ceil = s.opts.MaxBackoff
	}
	return rand.N(ceil + 1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// setConn makes conn the current connection and releases the requests
// waiting for one.
func (s *Session) setConn(conn *Conn) {
	s.noteStart(conn)
	s.mu.Lock()
	s.conn = conn
	s.last = conn.Ready()
	s.state = StateConnected
	close(s.ready)
	s.mu.Unlock()
	s.emit(Event{Op: "state", State: StateConnected})
}

// lose marks the connection gone: requests wait for the next.
func (s *Session) lose() {
	s.mu.Lock()
	if s.conn != nil {
		s.conn = nil
		s.ready = make(chan struct{})
	}
	s.state = StateReconnecting
	s.mu.Unlock()
	s.emit(Event{Op: "state", State: StateReconnecting})
}

// run forwards the current connection's events and reconnects when it
// ends, until the session is closed or refused for good.
func (s *Session) run(ctx context.Context, conn *Conn) {
	defer close(s.done)
	defer close(s.events)
	for {
		s.rejoin(ctx, conn)
		wait := s.pump(conn)
		_ = conn.Close()
		if ctx.Err() != nil {
			s.end(nil)
			return
		}
		if err := s.refusedForGood(conn); err != nil {
			s.end(err)
			return
		}
		s.lose()
		if wait <= 0 {
			// Not told when: a random part of the first backoff, so that the
			// clients of a server that went away do not all come back at
			// once.
			wait = s.backoff(0)
		}
		if !sleepCtx(ctx, wait) {
			s.end(nil)
			return
		}
		next, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				err = nil
			}
			s.end(err)
			return
		}
		conn = next
		s.setConn(conn)
	}
}

// pump forwards conn's events until it ends, or until the server asks
// for a reconnect; wait is how long the server asked to wait.
func (s *Session) pump(conn *Conn) (wait time.Duration) {
	for ev := range conn.Events() {
		switch ev.Op {
		case "msg":
			if !s.seen(ev.Msg) {
				continue
			}
		case "edited", "reaction":
			if !s.newChange(ev.Change) {
				continue
			}
		case "reconnect":
			s.emit(ev)
			return time.Duration(ev.AfterMS) * time.Millisecond
		case "closing":
			if ev.Closing != nil {
				wait = time.Duration(ev.Closing.ReconnectAfterMS) * time.Millisecond
			}
		case "left":
			// The game server took the user out: not joined again.
			s.mu.Lock()
			s.forgetLocked(ev.Ch)
			s.mu.Unlock()
		}
		s.emit(ev)
	}
	return wait
}

// seen notes a message's seq and reports whether it is new. A message
// whose prev is not the last seq seen in its channel follows a gap the
// server could not replay: a "gap" event goes first.
func (s *Session) seen(m *Message) bool {
	if m == nil || m.Seq == 0 {
		return true // v1, or undecodable: nothing to compare
	}
	s.mu.Lock()
	last, ok := s.seqs[m.Ch]
	if ok && m.Seq <= last {
		s.mu.Unlock()
		return false
	}
	s.seqs[m.Ch] = m.Seq
	delete(s.pos, m.Ch)
	s.mu.Unlock()
	if ok && last > 0 && m.Prev > last {
		s.emit(Event{Op: "gap", Ch: m.Ch, Gap: &Gap{Ch: m.Ch, After: last, Before: m.Seq}})
	}
	return true
}

// newChange notes an edit's or a reaction's seq and reports whether it
// is new: a resume replays the changes after the last message seen, some
// of which may have come live already. Changes do not move the seqs a
// session resumes from: a message the server held back may still come
// before them.
func (s *Session) newChange(c *Change) bool {
	if c == nil || c.Seq == 0 {
		return true // v1: nothing to compare
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.changes[c.Ch]; ok && c.Seq <= last {
		return false
	}
	s.changes[c.Ch] = c.Seq
	return true
}

// forgetLocked drops what the session keeps of a channel it left. Call
// with mu held.
func (s *Session) forgetLocked(ch string) {
	delete(s.joined, ch)
	delete(s.seqs, ch)
	delete(s.pos, ch)
	delete(s.changes, ch)
}

// rejoin joins, on a new connection, the channels joined with Join that
// it has not joined already (v1 sessions, or channels not resumed).
func (s *Session) rejoin(ctx context.Context, conn *Conn) {
	s.mu.Lock()
	want := slices.Sorted(maps.Keys(s.joined))
	s.mu.Unlock()
	have := conn.Ready().Channels
	for _, ch := range want {
		if slices.Contains(have, ch) {
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		seq, known, err := conn.join(jctx, ch)
		cancel()
		if err == nil && known {
			s.mu.Lock()
			s.notePosLocked(ch, seq)
			s.mu.Unlock()
		}
		if err != nil && kaiwa.ErrorCode(err) != kaiwa.CodeInternal {
			// The channel can no longer be joined: say so, and forget it.
			s.mu.Lock()
			delete(s.joined, ch)
			s.mu.Unlock()
			s.emit(Event{Op: "error", Ch: ch, Err: &kaiwa.Error{Code: kaiwa.ErrorCode(err), Message: "rejoin " + ch + ": " + kaiwa.ErrorMessage(err)}})
		}
	}
}

// refusedForGood returns why the server closed conn when the session must
// not reconnect: kicked or banned (4003: the game server wants the player
// out; the game decides when to come back), or a revoked token with no
// GetToken to replace it.
func (s *Session) refusedForGood(conn *Conn) error {
	code, reason, ok := conn.CloseStatus()
	switch {
	case !ok:
		return nil
	case code == 4003:
		return &CloseError{Code: code, Reason: reason}
	case code == 4001 && s.opts.GetToken == nil:
		return &CloseError{Code: code, Reason: reason}
	}
	return nil // 4001 with GetToken: the next dial asks for a new token
}

// end closes the session with err (nil: closed by the caller).
func (s *Session) end(err error) {
	s.mu.Lock()
	s.state = StateClosed
	s.err = err
	if s.err == nil {
		s.err = ErrClosed
	}
	s.mu.Unlock()
	if err != nil {
		s.emit(Event{Op: "error", Err: endError(err)})
	}
	s.emit(Event{Op: "state", State: StateClosed})
}

// endError is the error event of a session that ended with err: the
// server's refusal, a close that says why (4001: unauthorized, 4003:
// forbidden), or unavailable.
func endError(err error) *kaiwa.Error {
	var ke *kaiwa.Error
	if errors.As(err, &ke) {
		return ke
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case 4001:
			return &kaiwa.Error{Code: kaiwa.CodeUnauthorized, Message: ce.Reason}
		case 4003:
			return &kaiwa.Error{Code: kaiwa.CodeForbidden, Message: ce.Reason}
		}
	}
	return &kaiwa.Error{Code: kaiwa.CodeUnavailable, Message: err.Error()}
}

// emit passes an event to the caller. It waits while the caller is
// behind, unless the session is closing.
func (s *Session) emit(ev Event) {
	select {
	case s.events <- ev:
	case <-s.closed():
	}
}

// closed returns a channel closed once Close was called.
func (s *Session) closed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return closedChan
	}
	return nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// current waits for a ready connection (ctx bounds the wait).
func (s *Session) current(ctx context.Context) (*Conn, error) {
	for {
		s.mu.Lock()
		conn, ready, state, err := s.conn, s.ready, s.state, s.err
		s.mu.Unlock()
		if state == StateClosed {
			return nil, err
		}
		if conn != nil {
			return conn, nil
		}
		select {
		case <-ready:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// do runs a request on the current connection, and again on the next
// one when the connection ended before the answer (or the server could
// not tell the outcome): requests that change something carry a client
// message id, so running them again never does it twice.
func (s *Session) do(ctx context.Context, f func(*Conn) error) error {
	for {
		conn, err := s.current(ctx)
		if err != nil {
			return err
		}
		err = f(conn)
		if err == nil || ctx.Err() != nil || !s.retryable(conn, err) {
			return err
		}
		// Let the connection's end be noticed before trying again.
		select {
		case <-conn.Done():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryable reports whether a request that failed with err on conn may
// be run again on a later connection.
func (s *Session) retryable(conn *Conn, err error) bool {
	select {
	case <-conn.Done():
		return true
	default:
	}
	return kaiwa.IsCode(err, kaiwa.CodeUnavailable)
}

// Join joins channel ch, now and after every reconnect.
func (s *Session) Join(ctx context.Context, ch string) error {
	var (
		seq   uint64
		known bool
	)
	err := s.do(ctx, func(c *Conn) error {
		var err error
		seq, known, err = c.join(ctx, ch)
		return err
	})
	if err == nil {
		s.mu.Lock()
		s.joined[ch] = true
		if known {
			s.notePosLocked(ch, seq)
		}
		s.mu.Unlock()
	}
	return err
}

// Leave leaves channel ch; it is not joined again after a reconnect.
func (s *Session) Leave(ctx context.Context, ch string) error {
	s.mu.Lock()
	s.forgetLocked(ch)
	s.mu.Unlock()
	return s.do(ctx, func(c *Conn) error { return c.Leave(ctx, ch) })
}

// Say sends a message to channel ch with a fresh client message id, and
// returns the message's id and seq (0 in v1). A send interrupted by a
// disconnect is sent again on the next connection with the same id, so
// it is delivered once; ctx bounds the whole wait.
func (s *Session) Say(ctx context.Context, ch, text string, data []byte) (id string, seq uint64, err error) {
	return s.SayCID(ctx, ch, text, data, NewCID())
}

// SayCID is [Session.Say] with a client message id of the caller's: a
// send with the id of one the server already has (within two minutes)
// answers with that message's id and seq and delivers nothing again.
func (s *Session) SayCID(ctx context.Context, ch, text string, data []byte, cid string) (id string, seq uint64, err error) {
	err = s.do(ctx, func(c *Conn) error {
		id, seq, err = c.SayCID(ctx, ch, text, data, cid)
		return err
	})
	return id, seq, err
}

// DM sends a direct message to user to, as [Session.Say] does; ch is the
// direct channel.
func (s *Session) DM(ctx context.Context, to, text string, data []byte) (id, ch string, seq uint64, err error) {
	cid := NewCID()
	err = s.do(ctx, func(c *Conn) error {
		id, ch, seq, err = c.DMCID(ctx, to, text, data, cid)
		return err
	})
	return id, ch, seq, err
}

// History returns up to limit messages of ch before the message with id
// before ("" for the newest), oldest first.
func (s *Session) History(ctx context.Context, ch string, limit int, before string) (msgs []Message, err error) {
	err = s.do(ctx, func(c *Conn) error {
		msgs, err = c.History(ctx, ch, limit, before)
		return err
	})
	return msgs, err
}

// Ping asks the server for a pong (and, in v2, refreshes the RTT).
func (s *Session) Ping(ctx context.Context) error {
	return s.do(ctx, func(c *Conn) error { return c.Ping(ctx) })
}

// Events returns the channel of everything the server pushes (as
// [Conn.Events]), "state" events, and "gap" events. It is closed once the
// session has ended. Read it promptly: while it is full the session reads
// nothing from the server, which drops a client that reads nothing.
func (s *Session) Events() <-chan Event { return s.events }

// State returns where the session stands.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// RTT returns the current connection's round-trip time (v2); ok is false
// while reconnecting and until it is known.
func (s *Session) RTT() (time.Duration, bool) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return 0, false
	}
	return conn.RTT()
}

// Ready returns what the server reported when the latest connection
// became ready: its channels, and the unread counts and blocks of
// [Ready.Unread] and [Ready.Blocks] as they were then.
func (s *Session) Ready() Ready {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last
	r.Channels = slices.Clone(r.Channels)
	return r
}

// LastSeqs returns the last seq seen per channel (v2): what the session
// resumes from when it reconnects.
func (s *Session) LastSeqs() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.seqs)
}

// Err returns why the session ended: nil while it runs, [ErrClosed] after
// [Session.Close], or the server's refusal.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateClosed {
		return nil
	}
	return s.err
}

// Done returns a channel closed once the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends the session and its connection, and waits for its goroutine.
func (s *Session) Close() error {
	s.mu.Lock()
	s.closing = true
	conn := s.conn
	s.mu.Unlock()
	s.stop()
	if conn != nil {
		_ = conn.Close()
	}
	<-s.done
	return nil
}
