package versions

import (
	"bytes"
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/jsonw"
)

// encodeOp encodes a reply or notice (one of the Out* types) as a JSON
// object. It never fails: a value that does not encode to a JSON object
// (a history reply holding a message that is not valid JSON, a value
// encoding/json refuses, nil) becomes an "internal" error op carrying the
// value's ref, so the request it answered still gets its one reply.
//
// History replies are appended by hand: encoding/json would compact the
// encoded messages and so change the "data" the contract relays byte for
// byte.
func encodeOp(op any) []byte {
	switch v := op.(type) {
	case OutHistory:
		return encodeHistory(&v)
	case *OutHistory:
		if v != nil {
			return encodeHistory(v)
		}
	}
	b, err := json.Marshal(op)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return internalOp(refOf(op))
	}
	return b
}

// internalOp is the error op that replaces an op that could not be encoded.
func internalOp(ref string) []byte {
	b := append(make([]byte, 0, 96), `{"op":"error"`...)
	if ref != "" {
		b = jsonw.StringField(b, "ref", ref)
	}
	b = jsonw.StringField(b, "code", string(kaiwa.CodeInternal))
	b = jsonw.StringField(b, "message", "internal error")
	return append(b, '}')
}

// refOf returns the ref of the Out* types that carry one.
func refOf(op any) string {
	switch v := op.(type) {
	case OutOK:
		return v.Ref
	case *OutOK:
		if v != nil {
			return v.Ref
		}
	case OutError:
		return v.Ref
	case *OutError:
		if v != nil {
			return v.Ref
		}
	case OutHistory:
		return v.Ref
	case *OutHistory:
		if v != nil {
			return v.Ref
		}
	case OutPong:
		return v.Ref
	case *OutPong:
		if v != nil {
			return v.Ref
		}
	}
	return ""
}

// encodeHistory appends the encoded messages of a history reply unchanged,
// after checking that each is a JSON object.
func encodeHistory(h *OutHistory) []byte {
	n := 64 + len(h.Ref) + len(h.Ch)
	for _, m := range h.Messages {
		if b := bytes.TrimLeft(m, " \t\r\n"); len(b) == 0 || b[0] != '{' || !json.Valid(m) {
			return internalOp(h.Ref)
		}
		n += len(m) + 1
	}
	b := append(make([]byte, 0, n), `{"op":`...)
	b = jsonw.String(b, h.Op)
	if h.Ref != "" {
		b = jsonw.StringField(b, "ref", h.Ref)
	}
	b = jsonw.StringField(b, "ch", h.Ch)
	b = append(jsonw.Field(b, "messages", false), '[')
	for i, m := range h.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	return append(b, ']', '}')
}

// encodePresence encodes a "presence" op.
func encodePresence(p *kaiwa.Presence) []byte {
	if p.Event == kaiwa.PresenceTyping {
		return encodeTyping(p)
	}
	b := append(make([]byte, 0, 80+len(p.Channel)+len(p.User)+len(p.Name)), `{"op":"presence"`...)
	b = jsonw.StringField(b, "ch", p.Channel)
	b = jsonw.StringField(b, "user", p.User)
	b = jsonw.StringField(b, "name", p.Name)
	b = jsonw.StringField(b, "event", p.Event)
	return append(b, '}')
}
