package kaiwa

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// TenantID names a tenant (a game title): 1 to 64 of A-Z a-z 0-9 _ . -
type TenantID string

// MaxIDLen is the longest tenant or user id.
const MaxIDLen = 64

// MaxChannelLen is the longest channel name.
const MaxChannelLen = 140

// MaxRefLen is the longest client reference ("ref") or client message id ("cid").
const MaxRefLen = 64

// DMPrefix starts the name of every direct-message channel.
const DMPrefix = "dm:"

func isIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// ValidID reports whether s is a valid tenant or user id.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIDByte(s[i]) {
			return false
		}
	}
	return true
}

// ValidChannel reports whether s is a syntactically valid channel name
// (1 to 140 of A-Z a-z 0-9 _ . : -). It does not check the dm: rules; see
// [ParseDM].
func ValidChannel(s string) bool {
	if len(s) == 0 || len(s) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isIDByte(c) && c != ':' {
			return false
		}
	}
	return true
}

// CheckChannel returns a [CodeBadRequest] error when s is not a valid channel
// name, or is a malformed direct channel. Inbox channels ("@user") pass.
func CheckChannel(s string) error {
	if IsInbox(s) {
		return nil
	}
	if !ValidChannel(s) {
		return Errorf(CodeBadRequest, "invalid channel name")
	}
	if IsDM(s) {
		if _, _, ok := ParseDM(s); !ok {
			return Errorf(CodeBadRequest, "invalid direct channel name")
		}
	}
	return nil
}

// CheckID returns a [CodeBadRequest] error naming what when s is not a valid
// tenant or user id.
func CheckID(what, s string) error {
	if !ValidID(s) {
		return Errorf(CodeBadRequest, "invalid %s id", what)
	}
	return nil
}

// InboxPrefix starts a user's inbox channel, where system messages to that
// one user go ("@bob"). The character is outside the channel alphabet, so
// an inbox can never collide with a tenant's channel.
const InboxPrefix = "@"

// Inbox returns the inbox channel of user.
func Inbox(user string) string { return InboxPrefix + user }

// IsInbox reports whether ch is a well-formed inbox channel.
func IsInbox(ch string) bool {
	u, ok := strings.CutPrefix(ch, InboxPrefix)
	return ok && ValidID(u)
}

// InboxUser returns the user of an inbox channel.
func InboxUser(ch string) (string, bool) {
	u, ok := strings.CutPrefix(ch, InboxPrefix)
	return u, ok && ValidID(u)
}

// IsDM reports whether ch is in the reserved direct-message namespace.
func IsDM(ch string) bool { return strings.HasPrefix(ch, DMPrefix) }

// SharedChannels returns the channels of chs that are neither direct
// channels nor inboxes: those a player searches, and whose unread
// messages a new session counts.
func SharedChannels(chs []string) []string {
	var out []string
	for _, ch := range chs {
		if !IsDM(ch) && !IsInbox(ch) {
			out = append(out, ch)
		}
	}
	return out
}

// CheckManaged returns a [CodeBadRequest] error when ch is a direct or an
// inbox channel: those exist implicitly, with their users as members, and
// cannot be created, deleted or given members.
func CheckManaged(ch string) error {
	if IsDM(ch) {
		return Errorf(CodeBadRequest, "direct channels (dm:) exist implicitly and cannot be managed")
	}
	if strings.HasPrefix(ch, InboxPrefix) {
		return Errorf(CodeBadRequest, "inbox channels (@user) exist implicitly and cannot be managed")
	}
	return nil
}

// DMChannel returns the direct channel of users a and b: "dm:" followed by
// the two ids sorted and joined by ":".
func DMChannel(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return DMPrefix + a + ":" + b
}

// ParseDM splits a direct channel name into its two user ids (sorted). ok is
// false when ch is not a well-formed direct channel.
func ParseDM(ch string) (a, b string, ok bool) {
	rest, found := strings.CutPrefix(ch, DMPrefix)
	if !found {
		return "", "", false
	}
	a, b, found = strings.Cut(rest, ":")
	if !found || !ValidID(a) || !ValidID(b) || a >= b {
		return "", "", false
	}
	return a, b, true
}

// NewCID returns a fresh random client message id for a message sent
// without one, so that every publish can be de-duplicated: 23 characters,
// "~" and 22 of base64url (128 random bits).
func NewCID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "~" + base64.RawURLEncoding.EncodeToString(b[:])
}
