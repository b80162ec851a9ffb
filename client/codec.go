package client

import (
	"encoding/json"
	"fmt"

	"github.com/kaiwa-chat/kaiwa"
)

// codec frames ops for one protocol version. A Conn holds its own codec,
// so versions whose frames carry per-connection state (v2's clocks) keep it
// there. Methods are called by the Conn's writers (under writeMu) and its
// reader; a codec with state guards it itself.
type codec interface {
	// frame wraps one encoded client op into the frame to send.
	frame(op []byte) []byte
	// split calls fn with each op of a server frame, in order.
	split(frame []byte, fn func(op []byte)) error
}

// newCodec returns the codec of a protocol version.
func newCodec(version string) (codec, error) {
	switch version {
	case "v1":
		return v1Codec{}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrVersion, version)
}

// v1Codec: one JSON op per text frame.
type v1Codec struct{}

func (v1Codec) frame(op []byte) []byte { return op }

func (v1Codec) split(frame []byte, fn func(op []byte)) error {
	fn(frame)
	return nil
}

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
}

// authOp is the first-frame authentication op.
type authOp struct {
	Op    string `json:"op"`
	Token string `json:"token"`
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

	User       string       `json:"user"`
	Name       string       `json:"name"`
	Channels   []string     `json:"channels"`
	Version    string       `json:"version"`
	ServerTime int64        `json:"server_time"`
	Deprecated *Deprecation `json:"deprecated"`

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
		Name: in.Name, Text: in.Text, Data: in.Data, TS: in.TS, System: in.System}
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
	case "closing":
		ev.Closing = in.closing()
	case "error":
		ev.Err = in.kaiwaError()
	}
	return ev
}
