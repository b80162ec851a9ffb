package bus

import (
	"strings"

	"github.com/kaiwa-chat/kaiwa"
)

const hexDigits = "0123456789ABCDEF"

// token escapes a name so it is exactly one subject token.
func token(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == ':'
}

// untoken reverses [token]. ok is false for a malformed token.
func untoken(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// subjects builds every subject of one prefix.
type subjects struct{ p string }

func (s subjects) tenant(t kaiwa.TenantID) string { return s.p + "." + token(string(t)) }

// chanTail is the part after msg/live: "c.CH", "d.A.B" (direct channel of
// A < B) or "u.U" (inbox of user U).
func chanTail(ch string) string {
	if a, b, ok := kaiwa.ParseDM(ch); ok {
		return "d." + token(a) + "." + token(b)
	}
	if u, ok := kaiwa.InboxUser(ch); ok {
		return "u." + token(u)
	}
	return "c." + token(ch)
}

func (s subjects) msg(t kaiwa.TenantID, ch string) string {
	return s.tenant(t) + ".msg." + chanTail(ch)
}
func (s subjects) live(t kaiwa.TenantID, ch string) string {
	return s.tenant(t) + ".live." + chanTail(ch)
}

// change and liveChange are the subjects of a channel's change entries
// (edits, reactions): "msg.x." and the channel's tail, beside its
// messages, so that a message's prev stays the previous message's seq.
func (s subjects) change(t kaiwa.TenantID, ch string) string {
	return s.tenant(t) + ".msg.x." + chanTail(ch)
}
func (s subjects) liveChange(t kaiwa.TenantID, ch string) string {
	return s.tenant(t) + ".live.x." + chanTail(ch)
}

// stored returns the subject m is stored on: its channel's, or for a
// change entry the channel's change subject.
func (s subjects) stored(m *kaiwa.Message) string {
	if m.Kind != "" {
		return s.change(m.Tenant, m.Channel)
	}
	return s.msg(m.Tenant, m.Channel)
}
func (s subjects) ev(t kaiwa.TenantID, ch string) string { return s.tenant(t) + ".ev." + token(ch) }
func (s subjects) user(t kaiwa.TenantID, u string) string {
	return s.tenant(t) + ".user." + token(u)
}
func (s subjects) ctl(t kaiwa.TenantID) string            { return s.tenant(t) + ".ctl" }
func (s subjects) dir(t kaiwa.TenantID, op string) string { return s.tenant(t) + ".dir." + op }
func (s subjects) evlog(t kaiwa.TenantID) string          { return s.tenant(t) + ".evlog" }
func (s subjects) evb(t kaiwa.TenantID) string            { return s.tenant(t) + ".evb" }

// Wildcards for the stream, republishing and the API tier.
func (s subjects) allMsg() string     { return s.p + ".*.msg.>" }
func (s subjects) allLiveDst() string { return s.p + ".{{wildcard(1)}}.live.>" }
func (s subjects) allCtl() string     { return s.p + ".*.ctl" }
func (s subjects) allEvlog() string   { return s.p + ".*.evlog" }
func (s subjects) allEvb() string     { return s.p + ".*.evb" }

// allDir is directory operation op's subject in every tenant.
func (s subjects) allDir(op string) string { return s.p + ".*.dir." + op }

// userLive returns the subjects that carry a user's direct messages, the
// changes of them, and the user's inbox.
func (s subjects) userLive(t kaiwa.TenantID, u string) [5]string {
	base := s.tenant(t) + ".live."
	return [5]string{base + "d." + token(u) + ".*", base + "d.*." + token(u), base + "u." + token(u),
		base + "x.d." + token(u) + ".*", base + "x.d.*." + token(u)}
}

// parseTenant returns the tenant of a subject under prefix p.
func (s subjects) parseTenant(subj string) (kaiwa.TenantID, string, bool) {
	rest, ok := strings.CutPrefix(subj, s.p+".")
	if !ok {
		return "", "", false
	}
	tok, rest, _ := strings.Cut(rest, ".")
	t, ok := untoken(tok)
	if !ok || !kaiwa.ValidID(t) {
		return "", "", false
	}
	return kaiwa.TenantID(t), rest, true
}

// parseMsgTail turns "c.CH" or "d.A.B" (or a change subject's
// "x.c.CH", "x.d.A.B") back into a channel name.
func parseMsgTail(tail string) (string, bool) {
	tail = strings.TrimPrefix(tail, "x.")
	kind, rest, ok := strings.Cut(tail, ".")
	if !ok {
		return "", false
	}
	switch kind {
	case "c":
		ch, ok := untoken(rest)
		return ch, ok && kaiwa.ValidChannel(ch)
	case "u":
		u, ok := untoken(rest)
		return kaiwa.Inbox(u), ok && kaiwa.ValidID(u)
	case "d":
		at, bt, ok := strings.Cut(rest, ".")
		if !ok {
			return "", false
		}
		a, ok1 := untoken(at)
		b, ok2 := untoken(bt)
		if !ok1 || !ok2 || !kaiwa.ValidID(a) || !kaiwa.ValidID(b) {
			return "", false
		}
		return kaiwa.DMChannel(a, b), true
	}
	return "", false
}

// parseDir returns the tenant and operation of a directory subject.
func (s subjects) parseDir(subj string) (kaiwa.TenantID, string, bool) {
	t, rest, ok := s.parseTenant(subj)
	op, found := strings.CutPrefix(rest, "dir.")
	return t, op, ok && found
}
