package jsonw

import (
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
)

// PlayerMembers appends the members of what players do with a message,
// those set: "reply_to", "quote", "attachments", "edited_at" and
// "reactions". A message has them rarely, so the structured ones go
// through encoding/json.
func PlayerMembers(dst []byte, m *kaiwa.Message) []byte {
	if m.ReplyTo != "" {
		dst = StringField(dst, "reply_to", m.ReplyTo)
	}
	if m.Quote != nil {
		dst = value(Field(dst, "quote", false), m.Quote)
	}
	if len(m.Attachments) > 0 {
		dst = value(Field(dst, "attachments", false), m.Attachments)
	}
	if m.EditedAt != 0 {
		dst = Int(Field(dst, "edited_at", false), m.EditedAt)
	}
	if len(m.Reactions) > 0 {
		dst = value(Field(dst, "reactions", false), m.Reactions)
	}
	return dst
}

// value appends v as JSON; the types it is given always encode.
func value(dst []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}
