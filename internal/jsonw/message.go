package jsonw

import "github.com/kaiwa-chat/kaiwa"

// MessageBody appends the fields every JSON form of a message shares, each
// preceded by a comma: from and name (when set), text, data (byte for
// byte, when set), ts, and system (when true), as the wire codecs' "msg"
// op has them. The bus's stream payload has an encoder of its own, so
// that a change here never changes stored messages.
func MessageBody(dst []byte, m *kaiwa.Message) []byte {
	if m.From != "" {
		dst = StringField(dst, "from", m.From)
	}
	if m.Name != "" {
		dst = StringField(dst, "name", m.Name)
	}
	dst = StringField(dst, "text", m.Text)
	if len(m.Data) > 0 {
		dst = append(Field(dst, "data", false), m.Data...)
	}
	dst = Int(Field(dst, "ts", false), m.TS)
	if m.System {
		dst = append(dst, `,"system":true`...)
	}
	return dst
}
