package bus

import (
	"encoding/json"
	"fmt"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/jsonw"
)

// payloadVersion is the version of the stream payload [appendPayload]
// writes.
//
// The stream payload is how a message is stored in the stream (and
// republished to the live subjects): a format of its own, which no wire
// codec shares, so that changing what clients receive never changes what
// is stored. What a stream holds outlives releases (history, resume and
// the log writer read it for days), so every version ever written stays
// readable, and a change to the format is a new version.
//
// Version 1 is a JSON object whose first member is "v":1, followed by
// "from" and "name" (when set), "text", "data" (the sender's JSON object,
// byte for byte, when set), "ts" (milliseconds), "system" (when true) and
// "cid" (when set). Tenant, channel, id, seq and prev are not in it: the
// subject and the stream give them.
//
// Version 0, written before payloads had a version, has no "v" and the
// same members after "tenant" and "ch", which are ignored.
const payloadVersion = 1

// appendPayload appends the stream payload of m (version
// [payloadVersion]).
func appendPayload(dst []byte, m *kaiwa.Message) []byte {
	dst = append(dst, `{"v":1`...)
	if m.From != "" {
		dst = jsonw.StringField(dst, "from", m.From)
	}
	if m.Name != "" {
		dst = jsonw.StringField(dst, "name", m.Name)
	}
	dst = jsonw.StringField(dst, "text", m.Text)
	if len(m.Data) > 0 {
		dst = append(jsonw.Field(dst, "data", false), m.Data...)
	}
	dst = jsonw.Int(jsonw.Field(dst, "ts", false), m.TS)
	if m.System {
		dst = append(dst, `,"system":true`...)
	}
	if m.CID != "" {
		dst = jsonw.StringField(dst, "cid", m.CID)
	}
	return append(dst, '}')
}

// payload is a stored message as the stream holds it, of any version up
// to [payloadVersion] (0 and 1 have the same members).
type payload struct {
	V      int             `json:"v"`
	From   string          `json:"from"`
	Name   string          `json:"name"`
	Text   string          `json:"text"`
	Data   json.RawMessage `json:"data"`
	TS     int64           `json:"ts"`
	System bool            `json:"system"`
	CID    string          `json:"cid"`
}

// decodePayload sets m's content from a stream payload: what the payload
// holds, never its tenant or channel. A payload of a later version than
// this release knows is an error.
func decodePayload(data []byte, m *kaiwa.Message) error {
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("decode stream payload: %w", err)
	}
	if p.V < 0 || p.V > payloadVersion {
		return fmt.Errorf("decode stream payload: version %d, this release reads up to %d", p.V, payloadVersion)
	}
	m.From, m.Name, m.Text, m.Data = p.From, p.Name, p.Text, p.Data
	m.TS, m.System, m.CID = p.TS, p.System, p.CID
	return nil
}
