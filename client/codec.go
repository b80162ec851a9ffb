package client

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// codec frames ops for one protocol version. A Conn holds its own codec,
// so versions whose frames carry per-connection state (v2's clocks) keep it
// there. frame is called by the Conn's writers (under writeMu) and split by
// its reader; a codec with state guards it itself.
type codec interface {
	// frame wraps one encoded client op into the frame to send.
	frame(op []byte) []byte
	// split appends the ops of a server frame to ops, in order. They
	// point into frame.
	split(frame []byte, ops [][]byte) ([][]byte, error)
	// rtt returns the latest round-trip time, when the version measures it.
	rtt() (time.Duration, bool)
}

// checkVersion reports whether this client speaks a protocol version.
func checkVersion(version string) error {
	switch version {
	case "v1", "v2":
		return nil
	}
	return fmt.Errorf("%w: %q", ErrVersion, version)
}

// newCodec returns the codec of a version [checkVersion] accepted, for a
// connection that opened at opened.
func newCodec(version string, opened time.Time) codec {
	if version == "v2" {
		return &v2Codec{clock: versions.NewClock(opened)}
	}
	return v1Codec{}
}

// v1Codec: one JSON op per text frame.
type v1Codec struct{}

func (v1Codec) frame(op []byte) []byte { return op }

func (v1Codec) split(frame []byte, ops [][]byte) ([][]byte, error) {
	return append(ops, frame), nil
}

func (v1Codec) rtt() (time.Duration, bool) { return 0, false }

// v2Codec: every frame is an envelope {"t","e","ops"}, stamped and read
// with the connection's clock (see [versions.Clock]).
type v2Codec struct {
	clock *versions.Clock
}

func (c *v2Codec) frame(op []byte) []byte {
	return versions.V2{}.AppendFrame(make([]byte, 0, len(op)+48), [][]byte{op}, c.clock)
}

// split reads an envelope of any number of ops (the server sends at most
// [versions.V2MaxBatch]; a client need not enforce it) and records its
// clocks. The envelope is read in place (scanEnvelope) when it reads that
// way, else by [versions.ReadEnvelope], which also words the errors.
func (c *v2Codec) split(frame []byte, ops [][]byte) ([][]byte, error) {
	env, out, ok := scanEnvelope(frame, ops)
	if !ok {
		full, err := versions.ReadEnvelope(frame, math.MaxInt)
		if err != nil {
			return ops, fmt.Errorf("server frame: %w", err)
		}
		env = scannedEnvelope{t: full.T, e: full.E, hasE: full.HasE}
		out = ops
		for _, op := range full.Ops {
			out = append(out, op)
		}
	}
	c.clock.Record(time.Now(), env.t, env.e, env.hasE)
	return out, nil
}

func (c *v2Codec) rtt() (time.Duration, bool) { return c.clock.RTT() }

// outOp is a client op. Data is spliced in by encodeOp so that it goes out
// byte for byte as the caller gave it.
type outOp struct {
	Op     string `json:"op"`
	Ref    string `json:"ref,omitempty"`
	Ch     string `json:"ch,omitempty"`
	To     string `json:"to,omitempty"`
	Text   string `json:"text,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Before string `json:"before,omitempty"`
	CID    string `json:"cid,omitempty"`

	ID          string             `json:"id,omitempty"`
	Emoji       string             `json:"emoji,omitempty"`
	Seq         uint64             `json:"seq,omitempty"`
	User        string             `json:"user,omitempty"`
	Q           string             `json:"q,omitempty"`
	ReplyTo     string             `json:"reply_to,omitempty"`
	Attachments []kaiwa.Attachment `json:"attachments,omitempty"`
}

// authOp is the first-frame authentication op.
type authOp struct {
	Op     string            `json:"op"`
	Token  string            `json:"token"`
	Resume map[string]uint64 `json:"resume,omitempty"`
}

// encodeOp encodes op with data (a JSON value, or empty for none).
func encodeOp(op outOp, data json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", op.Op, err)
	}
	if len(data) == 0 {
		return b, nil
	}
	if !json.Valid(data) {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "data is not valid JSON")
	}
	out := make([]byte, 0, len(b)+len(data)+8)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"data":`...)
	out = append(out, data...)
	return append(out, '}'), nil
}

// inOp is any server op. Code is raw because "error" carries a string code
// and "closing" a numeric one.
type inOp struct {
	Op               string          `json:"op"`
	Ref              string          `json:"ref"`
	Code             json.RawMessage `json:"code"`
	Message          string          `json:"message"`
	Reason           string          `json:"reason"`
	ReconnectAfterMS int             `json:"reconnect_after_ms"`

	User       string            `json:"user"`
	Name       string            `json:"name"`
	Channels   []string          `json:"channels"`
	Version    string            `json:"version"`
	ServerTime int64             `json:"server_time"`
	Deprecated *Deprecation      `json:"deprecated"`
	Seqs       map[string]uint64 `json:"seqs"`

	Ch       string          `json:"ch"`
	ID       string          `json:"id"`
	Seq      uint64          `json:"seq"`
	Prev     uint64          `json:"prev"`
	From     string          `json:"from"`
	Text     string          `json:"text"`
	Data     json.RawMessage `json:"data"`
	TS       int64           `json:"ts"`
	System   bool            `json:"system"`
	Event    string          `json:"event"`
	Messages []Message       `json:"messages"`

	Recovered bool `json:"recovered"`
	AfterMS   int  `json:"after_ms"`

	ReplyTo     string             `json:"reply_to"`
	Quote       *kaiwa.Quote       `json:"quote"`
	Attachments []kaiwa.Attachment `json:"attachments"`
	EditedAt    int64              `json:"edited_at"`
	Reactions   []kaiwa.Reaction   `json:"reactions"`
	Emoji       string             `json:"emoji"`
	Added       bool               `json:"added"`
	Unread      map[string]Unread  `json:"unread"`
	Blocks      []string           `json:"blocks"`
	Next        string             `json:"next"`
}

// decodeOp parses one server op. On a decoding error the returned op still
// has Op and Ref when they could be read.
func decodeOp(raw []byte) (inOp, error) {
	var in inOp
	if err := json.Unmarshal(raw, &in); err != nil {
		var head struct {
			Op  string `json:"op"`
			Ref string `json:"ref"`
		}
		_ = json.Unmarshal(raw, &head)
		return inOp{Op: head.Op, Ref: head.Ref}, fmt.Errorf("decode %q op: %w", head.Op, err)
	}
	return in, nil
}

// kaiwaError returns the error an "error" op carries.
func (in *inOp) kaiwaError() *kaiwa.Error {
	var code string
	if err := json.Unmarshal(in.Code, &code); err != nil || code == "" {
		code = string(kaiwa.CodeInternal)
	}
	return &kaiwa.Error{Code: kaiwa.Code(code), Message: in.Message}
}

// closing returns the notice a "closing" op carries.
func (in *inOp) closing() *Closing {
	var code int
	_ = json.Unmarshal(in.Code, &code)
	return &Closing{Code: code, Reason: in.Reason, ReconnectAfterMS: in.ReconnectAfterMS}
}

// message returns the message a "msg" op carries.
func (in *inOp) message() *Message {
	return &Message{Ch: in.Ch, ID: in.ID, Seq: in.Seq, Prev: in.Prev, From: in.From,
		Name: in.Name, Text: in.Text, Data: in.Data, TS: in.TS, System: in.System,
		ReplyTo: in.ReplyTo, Quote: in.Quote, Attachments: in.Attachments, EditedAt: in.EditedAt, Reactions: in.Reactions}
}

// reply returns the op as a [Reply].
func (in *inOp) reply(raw []byte) Reply {
	return Reply{Op: in.Op, Ref: in.Ref, Ch: in.Ch, ID: in.ID, Seq: in.Seq, Messages: in.Messages, Raw: raw}
}

// event returns the op as an [Event].
func (in *inOp) event(raw []byte) Event {
	ev := Event{Op: in.Op, Ref: in.Ref, Raw: raw}
	switch in.Op {
	case "msg":
		ev.Msg = in.message()
	case "presence":
		ev.Presence = &Presence{Ch: in.Ch, User: in.User, Name: in.Name, Event: in.Event}
	case "joined":
		ev.Ch = in.Ch
	case "left":
		ev.Ch, ev.Reason = in.Ch, in.Reason
	case "deleted":
		ev.Ch, ev.ID = in.Ch, in.ID
	case "resumed":
		ev.Ch, ev.Recovered = in.Ch, in.Recovered
	case "reconnect":
		ev.AfterMS = in.AfterMS
	case "closing":
		ev.Closing = in.closing()
	case "error":
		ev.Err = in.kaiwaError()
	case "edited", "reaction":
		ev.Ch, ev.ID, ev.Change = in.Ch, in.ID, in.change()
	case "read":
		ev.Ch, ev.Seq = in.Ch, in.Seq
	case "typing":
		ev.Ch = in.Ch
		ev.Presence = &Presence{Ch: in.Ch, User: in.User, Name: in.Name, Event: "typing"}
	}
	return ev
}
