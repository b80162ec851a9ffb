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
//
// Version 2 adds, after the members of version 1, what players do with
// messages (see [appendPlayerMembers]): "reply_to", "quote",
// "attachments", "edited_at" and "reactions" of a message, and "kind",
// "target", "emoji" and "removed" of a change entry (an edit or a
// reaction). It is written only for a payload that has one of them, so
// that a plain message stays readable by releases that read version 1.
const payloadVersion = 2

// appendPayload appends the stream payload of m (version
// [payloadVersion]).
func appendPayload(dst []byte, m *kaiwa.Message) []byte {
	players := hasPlayerMembers(m)
	if players {
		dst = append(dst, `{"v":2`...)
	} else {
		dst = append(dst, `{"v":1`...)
	}
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
	if players {
		dst = appendPlayerMembers(dst, m)
	}
	return append(dst, '}')
}

// payload is a stored message as the stream holds it, of any version up
// to [payloadVersion] (0 and 1 have the same members, 2 adds some).
type payload struct {
	V      int             `json:"v"`
	From   string          `json:"from"`
	Name   string          `json:"name"`
	Text   string          `json:"text"`
	Data   json.RawMessage `json:"data"`
	TS     int64           `json:"ts"`
	System bool            `json:"system"`
	CID    string          `json:"cid"`

	// Version 2.
	ReplyTo     string             `json:"reply_to"`
	Quote       *kaiwa.Quote       `json:"quote"`
	Attachments []kaiwa.Attachment `json:"attachments"`
	EditedAt    int64              `json:"edited_at"`
	Reactions   []kaiwa.Reaction   `json:"reactions"`
	Kind        string             `json:"kind"`
	Target      string             `json:"target"`
	Emoji       string             `json:"emoji"`
	Removed     bool               `json:"removed"`
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
	m.ReplyTo, m.Quote, m.Attachments, m.EditedAt, m.Reactions = p.ReplyTo, p.Quote, p.Attachments, p.EditedAt, p.Reactions
	m.Kind, m.Target, m.Emoji, m.Removed = p.Kind, p.Target, p.Emoji, p.Removed
	return nil
}

// hasPlayerMembers reports whether m has a member of version 2.
func hasPlayerMembers(m *kaiwa.Message) bool {
	return m.ReplyTo != "" || m.Quote != nil || len(m.Attachments) > 0 || m.EditedAt != 0 ||
		len(m.Reactions) > 0 || m.Kind != "" || m.Target != "" || m.Emoji != "" || m.Removed
}

// appendPlayerMembers appends the members version 2 adds, those set.
func appendPlayerMembers(dst []byte, m *kaiwa.Message) []byte {
	if m.Kind != "" {
		dst = jsonw.StringField(dst, "kind", m.Kind)
	}
	if m.Target != "" {
		dst = jsonw.StringField(dst, "target", m.Target)
	}
	if m.Emoji != "" {
		dst = jsonw.StringField(dst, "emoji", m.Emoji)
	}
	if m.Removed {
		dst = append(dst, `,"removed":true`...)
	}
	return jsonw.PlayerMembers(dst, m)
}
