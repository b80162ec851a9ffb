package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kaiwa-chat/kaiwa"
)

// Errors a [Conn] reports.
var (
	// ErrClosed is the error of requests made after [Conn.Close].
	ErrClosed = errors.New("client: connection closed")
	// ErrSlowReader: the Events channel was full, so the Conn closed itself
	// rather than block its reader.
	ErrSlowReader = errors.New("client: slow reader: events channel full")
	// ErrVersion: the URL names a protocol version this client does not
	// speak.
	ErrVersion = errors.New("client: unsupported protocol version")
)

// Defaults of [Options].
const (
	// DefaultEventBuffer is the capacity of the events channel.
	DefaultEventBuffer = 1024
	// DefaultReadLimit bounds one server frame. The largest frame the
	// server sends is a history reply of 100 messages of maximal size.
	DefaultReadLimit = 4 << 20
	// DefaultMaxFrame is the largest frame the protocol accepts from a
	// client: the server refuses larger ones with too_large, and every op
	// whose content is within the limits fits.
	DefaultMaxFrame = 16 << 10
)

// CloseError is the error of a [Conn] the server closed: the WebSocket
// close code and reason (see [Conn.CloseStatus]).
type CloseError struct {
	Code   int
	Reason string
}

// Error implements the error interface.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("client: closed by server (%d)", e.Code)
	}
	return fmt.Sprintf("client: closed by server (%d %s)", e.Code, e.Reason)
}

// Options configure [Dial].
type Options struct {
	// Token is the user token the game server obtained from Kaiwa. It is
	// sent as "Authorization: Bearer TOKEN" on the upgrade request, or in
	// the first frame when FirstFrameAuth is set; never in the URL. With
	// an empty Token and FirstFrameAuth unset, no credentials are sent at
	// all (the server then waits for an auth frame that never comes).
	Token string
	// FirstFrameAuth sends {"op":"auth","token":...} as the first frame
	// instead of the Authorization header, as clients that cannot set
	// headers do.
	FirstFrameAuth bool
	// Resume (v2), when not empty, names the last message sequence number
	// seen per channel, usually [Conn.LastSeqs] of the previous
	// connection. After ready the server replays what each channel missed
	// since, as "msg" events, then a "resumed" event per channel. Resume
	// travels in the auth op, so a Conn with Resume always authenticates
	// with the first frame (no Authorization header), whatever
	// FirstFrameAuth says. Dial refuses Resume for v1.
	Resume map[string]uint64
	// TLSConfig, when set, is used for wss URLs (for example
	// InsecureSkipVerify for a self-signed local certificate). With
	// HTTPClient set too, the client's *http.Transport is cloned with this
	// config. Each Dial then builds a transport: a caller dialing many
	// connections should pass one HTTPClient instead.
	TLSConfig *tls.Config
	// HTTPClient, when set, makes the upgrade request (for example to
	// dial over a unix socket or from a chosen source address).
	HTTPClient *http.Client
	// Header holds extra headers for the upgrade request.
	Header http.Header
	// EventBuffer is the capacity of the [Conn.Events] channel (default
	// [DefaultEventBuffer]). When it is full the Conn closes itself as a
	// slow reader: its reader never blocks.
	EventBuffer int
	// ReadLimit bounds one server frame in bytes (default
	// [DefaultReadLimit]; -1 for none). A larger frame closes the Conn
	// with 1009.
	ReadLimit int64
	// MaxFrame bounds the frames of requests (default [DefaultMaxFrame];
	// -1 for none). A larger request fails with [kaiwa.CodeTooLarge]
	// without being sent: the server would refuse it with an error that
	// carries no ref. [Conn.SendRaw] is not bounded.
	MaxFrame int
	// OnMessage, when set, receives every "msg" op the server pushes,
	// instead of [Conn.Events]; everything else still arrives there. It
	// is the receive path for callers that count messages by the
	// thousand (the load tool): the Conn reads the op's [RawMsg] fields
	// in place, without decoding the op or allocating, and calls
	// OnMessage on its reader goroutine, once per message, in the order
	// received. The rules that buys:
	//
	//   - OnMessage must return quickly and never block: until it
	//     returns, the Conn reads nothing (replies, pings and the server's
	//     close wait; a server drops a client that stops reading).
	//   - It must not call methods of the Conn that wait for the server
	//     ([Conn.Say], [Conn.Join], [Conn.Close], ...): they wait for the
	//     reader, which waits for OnMessage.
	//   - The bytes of its [RawMsg] are valid only during the call.
	//   - Its messages are not ordered with the events of [Conn.Events].
	//
	// [Conn.LastSeqs] counts a message from the moment OnMessage is
	// called with it. OnMessage may be called before [Dial] returns, for
	// messages that arrive with "ready" (v2 resume). A "msg" op that does
	// not decode at all arrives on Events with Raw only, as it would
	// without OnMessage.
	OnMessage func(RawMsg)
}

// httpClient returns the client to dial with; nil means the default.
func (o *Options) httpClient() (*http.Client, error) {
	if o.TLSConfig == nil {
		return o.HTTPClient, nil
	}
	var base http.Client
	tr := http.DefaultTransport
	if o.HTTPClient != nil {
		base = *o.HTTPClient
		if base.Transport != nil {
			tr = base.Transport
		}
	}
	t, ok := tr.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("client: TLSConfig needs an *http.Transport, HTTPClient has %T", tr)
	}
	t = t.Clone()
	t.TLSClientConfig = o.TLSConfig
	base.Transport = t
	return &base, nil
}

// Conn is one authenticated session with a Kaiwa WebSocket server.
//
// A Conn runs one reader goroutine, which matches replies to requests by
// their ref and sends everything else to [Conn.Events] (messages to
// [Options.OnMessage] when set). Its methods are safe for concurrent use;
// each request waits in its caller's goroutine. A request whose ctx ends
// while its frame is being written closes the Conn (the frame may be half
// sent); one whose ctx ends while waiting for the reply just returns
// ctx.Err(), and a late reply arrives as an [Event].
type Conn struct {
	ws       *websocket.Conn
	version  string
	codec    codec
	ready    Ready
	maxFrame int
	events   chan Event
	done     chan struct{}
	refs     atomic.Uint64

	onMessage func(RawMsg)
	lastCh    string // the channel of the last message given to onMessage; reader only

	writeMu sync.Mutex // orders codec framing with writes

	mu          sync.Mutex
	pending     map[string]chan result // nil once the reader has ended
	err         error
	local       bool // Close was called before the reader ended
	closing     *Closing
	closeCode   int
	closeReason string
	closeOK     bool

	seqs map[string]uint64 // highest seq per channel delivered to events; guarded by mu

	closeOnce sync.Once
	closeErr  error
}

type result struct {
	reply Reply
	err   error
}

// Dial connects to a Kaiwa WebSocket URL such as wss://HOST/v1/ws,
// authenticates with opts.Token, and returns once the server has reported
// ready. The protocol version is the path segment before "ws".
//
// A refused token is a [*kaiwa.Error]: from the HTTP status and body of a
// refused upgrade (401 → [kaiwa.CodeUnauthorized] or
// [kaiwa.CodeTokenExpired]), or from the server's "error" op. A server
// that closes the connection before ready without saying why gives a
// [*CloseError]. ctx bounds the whole handshake.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	version, err := urlVersion(rawURL)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	if len(opts.Resume) > 0 && version == "v1" {
		return nil, errors.New("client: Options.Resume needs protocol v2 or later")
	}
	hc, err := opts.httpClient()
	if err != nil {
		return nil, err
	}
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if !opts.firstFrame() && opts.Token != "" {
		header.Set("Authorization", "Bearer "+opts.Token)
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, upgradeError(resp)
		}
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	cd := newCodec(version, time.Now()) // v2 clocks count from here
	limit := opts.ReadLimit
	if limit == 0 {
		limit = DefaultReadLimit
	}
	ws.SetReadLimit(limit)
	n := opts.EventBuffer
	if n <= 0 {
		n = DefaultEventBuffer
	}
	maxFrame := opts.MaxFrame
	if maxFrame == 0 {
		maxFrame = DefaultMaxFrame
	}
	c := &Conn{
		maxFrame:  maxFrame,
		ws:        ws,
		version:   version,
		codec:     cd,
		events:    make(chan Event, n),
		done:      make(chan struct{}),
		pending:   make(map[string]chan result),
		seqs:      make(map[string]uint64, len(opts.Resume)),
		onMessage: opts.OnMessage,
	}
	for ch, seq := range opts.Resume {
		c.seqs[ch] = seq
	}
	if err := c.handshake(ctx, &opts); err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// firstFrame reports whether the token goes in the first frame.
func (o *Options) firstFrame() bool { return o.FirstFrameAuth || len(o.Resume) > 0 }

// urlVersion returns the protocol version named by a WebSocket URL's path
// (".../{version}/ws").
func urlVersion(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("client: parse url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", fmt.Errorf("client: url scheme %q: want wss or ws", u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" {
		// Credentials never travel in URLs.
		return "", errors.New("client: the url must carry no user info or query")
	}
	parts := strings.Split(strings.TrimSuffix(u.Path, "/"), "/")
	if len(parts) < 3 || parts[len(parts)-1] != "ws" || parts[len(parts)-2] == "" {
		return "", fmt.Errorf("client: url path %q: want /{version}/ws", u.Path)
	}
	return parts[len(parts)-2], nil
}

// upgradeError turns a refused upgrade into a [*kaiwa.Error], from the
// body's {"error":{"code","message"}} when present, else from the status.
func upgradeError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code    kaiwa.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
			return &kaiwa.Error{Code: body.Error.Code, Message: body.Error.Message}
		}
	}
	code := kaiwa.CodeUnavailable
	switch resp.StatusCode {
	case http.StatusBadRequest:
		code = kaiwa.CodeBadRequest
	case http.StatusUnauthorized:
		code = kaiwa.CodeUnauthorized
	case http.StatusForbidden:
		code = kaiwa.CodeForbidden
	case http.StatusNotFound:
		code = kaiwa.CodeNotFound
	case http.StatusTooManyRequests:
		code = kaiwa.CodeRateLimited
	}
	return kaiwa.Errorf(code, "upgrade refused with HTTP %d", resp.StatusCode)
}

// handshake authenticates (first-frame mode) and reads until "ready".
// Ops that arrive with or after ready go to the events channel (messages
// to OnMessage when set).
func (c *Conn) handshake(ctx context.Context, opts *Options) error {
	if opts.firstFrame() {
		b, err := json.Marshal(authOp{Op: "auth", Token: opts.Token, Resume: opts.Resume})
		if err != nil {
			return fmt.Errorf("client: encode auth: %w", err)
		}
		if err := c.ws.Write(ctx, websocket.MessageText, c.codec.frame(b)); err != nil {
			return fmt.Errorf("client: send auth: %w", err)
		}
	}
	var (
		ready   bool
		failed  error
		closing *Closing
	)
	for !ready {
		typ, frame, err := c.ws.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				var ce websocket.CloseError
				errors.As(err, &ce)
				return fmt.Errorf("client: before ready: %w", &CloseError{Code: int(code), Reason: ce.Reason})
			}
			if closing != nil {
				return fmt.Errorf("client: before ready: %w", &CloseError{Code: closing.Code, Reason: closing.Reason})
			}
			return fmt.Errorf("client: wait for ready: %w", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		ops, err := c.codec.split(frame, nil)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		for _, raw := range ops {
			if ready {
				if !c.handle(raw) {
					failed = ErrSlowReader
				}
				continue
			}
			in, err := decodeOp(raw)
			switch {
			case err != nil:
				failed = fmt.Errorf("client: %w", err)
			case in.Op == "ready":
				c.ready = Ready{User: in.User, Name: in.Name, Channels: in.Channels,
					Version: in.Version, ServerTime: in.ServerTime, Deprecated: in.Deprecated, Seqs: in.Seqs,
					Unread: in.Unread, Blocks: in.Blocks}
				ready = true
			case in.Op == "error":
				failed = in.kaiwaError()
			default:
				if in.Op == "closing" {
					closing = in.closing()
				}
				if !c.handle(raw) {
					failed = ErrSlowReader
				}
			}
		}
		if failed != nil {
			return failed
		}
	}
	return nil
}

// readLoop is the Conn's one reader goroutine. It reads each frame into
// a pooled buffer, which the ops handed on point into until they are
// copied (see [Conn.handle]).
func (c *Conn) readLoop() {
	var (
		err error
		ops [][]byte // the current frame's, reused
	)
	for {
		typ, r, rerr := c.ws.Reader(context.Background())
		if rerr != nil {
			err = rerr
			break
		}
		buf := getFrameBuffer()
		frame, rerr := readAll(r, (*buf)[:0])
		if typ != websocket.MessageText || rerr != nil {
			putFrameBuffer(buf, frame)
			if rerr != nil {
				err = rerr
				break
			}
			continue
		}
		var serr error
		ops, serr = c.codec.split(frame, ops[:0])
		slow := false
		for _, raw := range ops {
			if slow = !c.handle(raw); slow {
				break
			}
		}
		clear(ops)
		putFrameBuffer(buf, frame)
		if serr != nil && !slow {
			// A frame the client cannot read is reported, and the
			// connection goes on, as every Kaiwa client does.
			slow = !c.push(Event{Op: "error", Err: &kaiwa.Error{Code: CodeBadFrame, Message: serr.Error()}})
		}
		if slow {
			err = ErrSlowReader
			_ = c.ws.Close(websocket.StatusPolicyViolation, "slow reader")
			break
		}
	}
	c.finish(err)
}

// CodeBadFrame is the code of the "error" [Event] of a server frame the
// client could not read; the connection goes on.
const CodeBadFrame kaiwa.Code = "bad_frame"

// push puts ev in the events channel without blocking; false when full.
func (c *Conn) push(ev Event) bool {
	select {
	case c.events <- ev:
		return true
	default:
		return false
	}
}

// handle takes one server op, which may point into a reused buffer: a
// "msg" op goes to OnMessage when set, read in place when it reads that
// way; any other op is copied and dispatched. It reports false when the
// events channel is full.
func (c *Conn) handle(raw []byte) bool {
	if c.onMessage != nil {
		if m, ok := scanMsg(raw); ok {
			c.deliver(RawMsg{Ch: c.channel(m.ch), Seq: m.seq, Prev: m.prev, Data: m.data, Raw: raw})
			return true
		}
	}
	return c.dispatch(bytes.Clone(raw))
}

// channel returns ch as a string, without allocating when it names the
// same channel as the previous message.
func (c *Conn) channel(ch []byte) string {
	if string(ch) != c.lastCh {
		c.lastCh = string(ch)
	}
	return c.lastCh
}

// deliver notes a message's seq and hands it to OnMessage.
func (c *Conn) deliver(m RawMsg) {
	if m.Seq > 0 {
		c.mu.Lock()
		if m.Seq > c.seqs[m.Ch] {
			c.seqs[m.Ch] = m.Seq
		}
		c.mu.Unlock()
	}
	c.onMessage(m)
}

// dispatch hands one server op to the request waiting for its ref, to
// OnMessage (a "msg" op, when set), or to the events channel. It reports
// false when the channel is full. dispatch keeps raw: it must not be
// reused.
func (c *Conn) dispatch(raw []byte) bool {
	in, derr := decodeOp(raw)
	if in.Ref != "" {
		c.mu.Lock()
		ch, ok := c.pending[in.Ref]
		if ok {
			delete(c.pending, in.Ref)
		}
		c.mu.Unlock()
		if ok {
			switch {
			case derr != nil:
				ch <- result{err: fmt.Errorf("client: %w", derr)}
			case in.Op == "error":
				ch <- result{reply: in.reply(raw), err: in.kaiwaError()}
			default:
				ch <- result{reply: in.reply(raw)}
			}
			return true
		}
	}
	if c.onMessage != nil && derr == nil && in.Op == "msg" {
		c.deliver(RawMsg{Ch: in.Ch, Seq: in.Seq, Prev: in.Prev, Data: in.Data, Raw: raw})
		return true
	}
	var ev Event
	if derr != nil {
		ev = Event{Op: in.Op, Ref: in.Ref, Raw: raw}
	} else {
		ev = in.event(raw)
	}
	if ev.Closing != nil {
		c.mu.Lock()
		c.closing = ev.Closing
		c.mu.Unlock()
	}
	// A message counts as seen from the moment it is in the events
	// channel: note its seq first and take the note back if it cannot be
	// delivered, so LastSeqs never names a message the caller cannot read.
	var (
		noted      bool
		before     uint64
		hadChannel bool
	)
	if m := ev.Msg; m != nil && m.Seq > 0 {
		c.mu.Lock()
		before, hadChannel = c.seqs[m.Ch]
		if m.Seq > before {
			c.seqs[m.Ch], noted = m.Seq, true
		}
		c.mu.Unlock()
	}
	select {
	case c.events <- ev:
		return true
	default:
		if noted {
			c.mu.Lock()
			if hadChannel {
				c.seqs[ev.Msg.Ch] = before
			} else {
				delete(c.seqs, ev.Msg.Ch)
			}
			c.mu.Unlock()
		}
		return false
	}
}

// finish records why the reader ended and releases everyone waiting.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	var ce websocket.CloseError
	switch {
	case c.local:
		c.err = ErrClosed
	case errors.Is(err, ErrSlowReader):
		c.err = ErrSlowReader
	case errors.As(err, &ce):
		c.closeCode, c.closeReason, c.closeOK = int(ce.Code), ce.Reason, true
	case c.closing != nil:
		c.closeCode, c.closeReason, c.closeOK = c.closing.Code, c.closing.Reason, true
	default:
		c.err = fmt.Errorf("client: connection lost: %w", err)
	}
	if c.closeOK {
		c.err = &CloseError{Code: c.closeCode, Reason: c.closeReason}
	}
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
	close(c.events)
}

// Version returns the protocol version the Conn speaks ("v1", "v2").
func (c *Conn) Version() string { return c.version }

// RTT returns the latest round-trip time to the server (v2). The Conn
// measures it from every server frame that echoes the Conn's clock, so it
// is known once the Conn has sent a frame and received one after it: right
// after [Dial] with first-frame authentication, after the first request
// otherwise. ok is false until then, and always in v1.
func (c *Conn) RTT() (rtt time.Duration, ok bool) { return c.codec.rtt() }

// LastSeqs returns, per channel, the highest message sequence number the
// Conn has delivered to [Conn.Events] or [Options.OnMessage] (v2; direct
// and inbox channels included), starting from [Options.Resume]. Pass it as
// Options.Resume when dialing again to receive what was missed meanwhile.
// Messages still buffered in Events count as delivered: keep reading the
// old Conn's Events until it is closed. LastSeqs stays readable after the
// Conn ended.
func (c *Conn) LastSeqs() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.seqs)
}

// Ready returns what the server reported when the session became ready.
func (c *Conn) Ready() Ready {
	r := c.ready
	r.Channels = slices.Clone(r.Channels)
	return r
}

// Events returns the channel of everything the server pushes (see
// [Event]). It is closed after the Conn ends, once its buffered events are
// read. Read it promptly: when it is full the Conn closes itself.
func (c *Conn) Events() <-chan Event { return c.events }

// Done returns a channel closed when the Conn has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the Conn ended: nil while it is open, [ErrClosed] after
// [Conn.Close], [ErrSlowReader], a [*CloseError] when the server closed it,
// or the network error that broke it.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseStatus returns the WebSocket close code and reason the server
// closed the session with (for example 4008 "slow consumer", 4001, 1001,
// 1009), or, when the connection dropped right after a "closing" op, that
// op's code and reason. ok is false while the Conn is open and when the
// client ended it.
func (c *Conn) CloseStatus() (code int, reason string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeReason, c.closeOK
}

// Close ends the session with a normal closure and waits for the reader to
// stop. It is safe to call more than once and after the server closed.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		running := c.pending != nil
		if running {
			c.local = true
		}
		c.mu.Unlock()
		err := c.ws.Close(websocket.StatusNormalClosure, "")
		<-c.done
		if running && err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("client: close: %w", err)
		}
	})
	return c.closeErr
}

// nextRef returns a ref no other request of this Conn uses.
func (c *Conn) nextRef() string { return "c" + strconv.FormatUint(c.refs.Add(1), 36) }

// write sends one text frame: an encoded op framed by the version's codec
// and refused when the frame is over maxFrame, or, when raw, the bytes as
// given.
func (c *Conn) write(ctx context.Context, b []byte, raw bool) error {
	c.writeMu.Lock()
	if !raw {
		b = c.codec.frame(b)
		if c.maxFrame > 0 && len(b) > c.maxFrame {
			c.writeMu.Unlock()
			return kaiwa.Errorf(kaiwa.CodeTooLarge, "frame of %d bytes, the limit is %d", len(b), c.maxFrame)
		}
	}
	err := c.ws.Write(ctx, websocket.MessageText, b)
	c.writeMu.Unlock()
	if err != nil {
		select {
		case <-c.done:
			return c.Err()
		default:
		}
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// roundTrip sends an encoded op carrying ref and waits for its reply.
func (c *Conn) roundTrip(ctx context.Context, ref string, op []byte) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return Reply{}, err
	}
	c.pending[ref] = ch
	c.mu.Unlock()
	if err := c.write(ctx, op, false); err != nil {
		c.forget(ref)
		return Reply{}, err
	}
	select {
	case r := <-ch:
		return r.reply, r.err
	case <-ctx.Done():
		c.forget(ref)
		return Reply{}, ctx.Err()
	case <-c.done:
		select {
		case r := <-ch:
			return r.reply, r.err
		default:
		}
		return Reply{}, c.Err()
	}
}

func (c *Conn) forget(ref string) {
	c.mu.Lock()
	delete(c.pending, ref)
	c.mu.Unlock()
}

// request sends a typed op with a fresh ref and checks the reply's op.
func (c *Conn) request(ctx context.Context, op outOp, data json.RawMessage, want string) (Reply, error) {
	op.Ref = c.nextRef()
	b, err := encodeOp(op, data)
	if err != nil {
		return Reply{}, err
	}
	r, err := c.roundTrip(ctx, op.Ref, b)
	if err != nil {
		return r, err
	}
	if r.Op != want {
		return r, fmt.Errorf("client: %s: reply %q, want %q", op.Op, r.Op, want)
	}
	return r, nil
}

// Join joins channel ch for this session. Joining a channel already joined
// succeeds.
func (c *Conn) Join(ctx context.Context, ch string) error {
	_, _, err := c.join(ctx, ch)
	return err
}

// join joins ch and returns the channel's position (v2): the seq up to
// which its messages came before the session joined; ok is false when the
// server did not say (v1, or it did not know).
func (c *Conn) join(ctx context.Context, ch string) (pos uint64, ok bool, err error) {
	r, err := c.request(ctx, outOp{Op: "join", Ch: ch}, nil, "ok")
	if err != nil {
		return 0, false, err
	}
	var p struct {
		Seq *uint64 `json:"seq"`
	}
	if json.Unmarshal(r.Raw, &p) != nil || p.Seq == nil {
		return 0, false, nil
	}
	return *p.Seq, true, nil
}

// Leave leaves channel ch.
func (c *Conn) Leave(ctx context.Context, ch string) error {
	_, err := c.request(ctx, outOp{Op: "leave", Ch: ch}, nil, "ok")
	return err
}

// Say sends a message to a joined channel and returns its id. data, when
// not empty, must be a JSON object; it is sent byte for byte.
func (c *Conn) Say(ctx context.Context, ch, text string, data json.RawMessage) (id string, err error) {
	r, err := c.request(ctx, outOp{Op: "say", Ch: ch, Text: text}, data, "ok")
	return r.ID, err
}

// DM sends a direct message to user to and returns its id and the direct
// channel it went to ("dm:" and the two user ids sorted).
func (c *Conn) DM(ctx context.Context, to, text string, data json.RawMessage) (id, ch string, err error) {
	r, err := c.request(ctx, outOp{Op: "dm", To: to, Text: text}, data, "ok")
	return r.ID, r.Ch, err
}

// SayCID is [Conn.Say] with a client message id and the message's
// sequence number. cid (at most 64 characters; "" for none) makes the send
// safe to retry: a v2 server that already accepted a message with the same
// cid from this user within the last two minutes answers with the first
// message's id and seq and does not deliver it again. Reuse the cid when
// retrying after an error or a reconnect; make a fresh one per message
// ([NewCID]). seq is 0 in v1.
func (c *Conn) SayCID(ctx context.Context, ch, text string, data json.RawMessage, cid string) (id string, seq uint64, err error) {
	r, err := c.request(ctx, outOp{Op: "say", Ch: ch, Text: text, CID: cid}, data, "ok")
	return r.ID, r.Seq, err
}

// DMCID is [Conn.DM] with a client message id (see [Conn.SayCID]) and the
// message's sequence number.
func (c *Conn) DMCID(ctx context.Context, to, text string, data json.RawMessage, cid string) (id, ch string, seq uint64, err error) {
	r, err := c.request(ctx, outOp{Op: "dm", To: to, Text: text, CID: cid}, data, "ok")
	return r.ID, r.Ch, r.Seq, err
}

// NewCID returns a fresh random client message id for [Conn.SayCID] and
// [Conn.DMCID]: 22 characters of base64url.
func NewCID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// History returns up to limit messages of channel ch before the message
// with id before (the newest when before is ""), oldest first. A limit of
// 0 asks for the server's default (50).
func (c *Conn) History(ctx context.Context, ch string, limit int, before string) ([]Message, error) {
	r, err := c.request(ctx, outOp{Op: "history", Ch: ch, Limit: limit, Before: before}, nil, "history")
	return r.Messages, err
}

// Ping sends the "ping" op and waits for "pong".
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.request(ctx, outOp{Op: "ping"}, nil, "pong")
	return err
}

// Request sends any op (a copy of op with a fresh "ref" set, replacing any
// the map has) and returns the reply. An "error" reply is returned as a
// [*kaiwa.Error] together with the Reply. It is meant for tests of odd
// input; the typed methods are the client API.
func (c *Conn) Request(ctx context.Context, op map[string]any) (Reply, error) {
	m := make(map[string]any, len(op)+1)
	for k, v := range op {
		m[k] = v
	}
	ref := c.nextRef()
	m["ref"] = ref
	b, err := json.Marshal(m)
	if err != nil {
		return Reply{}, fmt.Errorf("client: encode request: %w", err)
	}
	return c.roundTrip(ctx, ref, b)
}

// SendRaw writes frame as one text frame, unchanged (no version framing).
// The server's answer arrives as an [Event].
func (c *Conn) SendRaw(ctx context.Context, frame []byte) error {
	return c.write(ctx, frame, true)
}
