package versions

import (
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/jsonw"
)

// UnreadCount is one channel's entry of "unread" (in "ready" and the
// unread op's reply): Count messages of others after the user's read
// cursor Read (at most 999), and Last, the channel's position (0 when not
// known).
type UnreadCount struct {
	Count int    `json:"count"`
	Read  uint64 `json:"read"`
	Last  uint64 `json:"last,omitempty"`
}

// OutUnread is the reply of the unread op.
type OutUnread struct {
	Op     string                 `json:"op"`
	Ref    string                 `json:"ref,omitempty"`
	Unread map[string]UnreadCount `json:"unread"`
}

// OutRead tells a user's sessions that the user read a channel up to Seq
// (on this or another device).
type OutRead struct {
	Op  string `json:"op"`
	Ch  string `json:"ch"`
	Seq uint64 `json:"seq"`
}

// OutSearch is the reply of the search op; Messages are encoded "msg"
// ops, newest first, and Next the "before" of the next page.
type OutSearch struct {
	Op       string            `json:"op"`
	Ref      string            `json:"ref,omitempty"`
	Messages []json.RawMessage `json:"messages"`
	Next     string            `json:"next,omitempty"`
}

// appendChange appends the op of a change entry: "edited" for an edit,
// "reaction" for a reaction; withSeq adds the entry's seq (v2), which a
// client keeps as its channel's position like a message's. A change has
// no prev: a message's prev is the previous message's seq.
func appendChange(dst []byte, m *kaiwa.Message, withSeq bool) []byte {
	switch m.Kind {
	case kaiwa.KindEdit:
		dst = append(dst, `{"op":"edited"`...)
	case kaiwa.KindReaction:
		dst = append(dst, `{"op":"reaction"`...)
	default:
		dst = append(dst, `{"op":"changed"`...)
	}
	dst = jsonw.StringField(dst, "ch", m.Channel)
	dst = jsonw.StringField(dst, "id", m.Target)
	if withSeq {
		dst = jsonw.Uint(jsonw.Field(dst, "seq", false), m.Seq)
	}
	switch m.Kind {
	case kaiwa.KindEdit:
		if m.From != "" {
			dst = jsonw.StringField(dst, "from", m.From)
		}
		dst = jsonw.StringField(dst, "text", m.Text)
		dst = jsonw.Int(jsonw.Field(dst, "edited_at", false), m.EditedAt)
	case kaiwa.KindReaction:
		dst = jsonw.StringField(dst, "user", m.From)
		dst = jsonw.StringField(dst, "emoji", m.Emoji)
		if m.Removed {
			dst = append(dst, `,"added":false`...)
		} else {
			dst = append(dst, `,"added":true`...)
		}
		reactions := m.Reactions
		if reactions == nil {
			reactions = []kaiwa.Reaction{}
		}
		b, _ := json.Marshal(reactions)
		dst = append(jsonw.Field(dst, "reactions", false), b...)
	}
	return append(dst, '}')
}

// encodeTyping encodes a "typing" op: user is typing in ch.
func encodeTyping(p *kaiwa.Presence) []byte {
	b := append(make([]byte, 0, 64+len(p.Channel)+len(p.User)+len(p.Name)), `{"op":"typing"`...)
	b = jsonw.StringField(b, "ch", p.Channel)
	b = jsonw.StringField(b, "user", p.User)
	b = jsonw.StringField(b, "name", p.Name)
	return append(b, '}')
}
