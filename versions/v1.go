package versions

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/jsonw"
)

// V1 is the plain protocol: one JSON op per text frame.
type V1 struct{}

var _ Codec = V1{}

// wireOp is a client op as it appears on the wire (v1, and each op of a v2
// envelope).
type wireOp struct {
	Op     string            `json:"op"`
	Ref    string            `json:"ref"`
	Token  string            `json:"token"`
	Ch     string            `json:"ch"`
	To     string            `json:"to"`
	Text   string            `json:"text"`
	Data   json.RawMessage   `json:"data"`
	Limit  int               `json:"limit"`
	Before string            `json:"before"`
	CID    string            `json:"cid"`
	Resume map[string]uint64 `json:"resume"`

	// What players do (versions/players.go).
	ID          string             `json:"id"`
	Emoji       string             `json:"emoji"`
	Seq         uint64             `json:"seq"`
	User        string             `json:"user"`
	Q           string             `json:"q"`
	ReplyTo     string             `json:"reply_to"`
	Attachments []kaiwa.Attachment `json:"attachments"`
}

// decodeOp parses one op object, checking what every version shares.
func decodeOp(raw []byte) (Command, string, error) {
	var w wireOp
	if err := json.Unmarshal(raw, &w); err != nil {
		// Recover the ref if the frame is an object with a string ref.
		var r struct {
			Ref string `json:"ref"`
		}
		_ = json.Unmarshal(raw, &r)
		if len(r.Ref) > kaiwa.MaxRefLen {
			r.Ref = ""
		}
		return Command{}, r.Ref, kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed op: %s", jsonErrText(err))
	}
	if len(w.Ref) > kaiwa.MaxRefLen {
		return Command{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "ref longer than %d characters", kaiwa.MaxRefLen)
	}
	if w.Op == "" {
		return Command{}, w.Ref, kaiwa.Errorf(kaiwa.CodeBadRequest, "missing op")
	}
	if len(w.CID) > kaiwa.MaxRefLen {
		return Command{}, w.Ref, kaiwa.Errorf(kaiwa.CodeBadRequest, "cid longer than %d characters", kaiwa.MaxRefLen)
	}
	if bytes.Equal(w.Data, []byte("null")) {
		w.Data = nil
	}
	return Command{
		Op: w.Op, Ref: w.Ref, Token: w.Token, Ch: w.Ch, To: w.To, Text: w.Text,
		Data: w.Data, Limit: w.Limit, Before: w.Before, CID: w.CID, Resume: w.Resume,
		ID: w.ID, Emoji: w.Emoji, Seq: w.Seq, User: w.User, Q: w.Q, ReplyTo: w.ReplyTo, Attachments: w.Attachments,
	}, w.Ref, nil
}

// jsonErrText describes a JSON decoding error without echoing input.
func jsonErrText(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "invalid JSON"
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return "field " + e.Field + " has the wrong type"
		}
		return "expected a JSON object"
	}
	return "invalid JSON"
}

// checkFrame rejects frames that are not valid UTF-8 JSON objects.
func checkFrame(frame []byte) error {
	if !utf8.Valid(frame) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "frame is not valid UTF-8")
	}
	if b := bytes.TrimLeft(frame, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "frame must be a JSON object")
	}
	return nil
}

// DecodeFrame implements [Codec].
func (V1) DecodeFrame(dst []Command, frame []byte, _ *Clock) ([]Command, string, error) {
	if err := checkFrame(frame); err != nil {
		return dst, "", err
	}
	c, ref, err := decodeOp(frame)
	if err != nil {
		return dst, ref, err
	}
	return append(dst, c), ref, nil
}

// appendMsg appends a "msg" op. withSeq adds seq and prev (v2). Data is
// copied byte for byte, as the contract requires.
func appendMsg(dst []byte, m *kaiwa.Message, withSeq bool) []byte {
	dst = append(dst, `{"op":"msg"`...)
	dst = jsonw.StringField(dst, "ch", m.Channel)
	dst = jsonw.StringField(dst, "id", m.ID)
	if withSeq {
		dst = jsonw.Uint(jsonw.Field(dst, "seq", false), m.Seq)
		dst = jsonw.Uint(jsonw.Field(dst, "prev", false), m.Prev)
	}
	return append(jsonw.PlayerMembers(jsonw.MessageBody(dst, m), m), '}')
}

// msgSize is the usual length of m's "msg" op (longer only when strings
// need escapes), so that encoding allocates once.
func msgSize(m *kaiwa.Message) int {
	return 128 + len(m.Channel) + len(m.ID) + len(m.From) + len(m.Name) + len(m.Text) + len(m.Data)
}

// EncodeMessage implements [Codec].
func (V1) EncodeMessage(m *kaiwa.Message) []byte {
	if m.Kind != "" {
		return appendChange(make([]byte, 0, msgSize(m)), m, false)
	}
	return appendMsg(make([]byte, 0, msgSize(m)), m, false)
}

// EncodePresence implements [Codec].
func (V1) EncodePresence(p *kaiwa.Presence) []byte { return encodePresence(p) }

// EncodeOp implements [Codec]. It never fails; see [V2.EncodeOp].
func (V1) EncodeOp(op any) []byte { return encodeOp(op) }

// MaxBatch implements [Codec]: v1 carries one op per frame.
func (V1) MaxBatch() int { return 1 }

// AppendFrame implements [Codec]: a v1 frame is the op itself, so ops must
// hold exactly one op (none appends nothing; further ops are not written).
func (V1) AppendFrame(dst []byte, ops [][]byte, _ *Clock) []byte {
	if len(ops) == 0 {
		return dst
	}
	return append(dst, ops[0]...)
}
