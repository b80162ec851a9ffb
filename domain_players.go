package kaiwa

import (
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kinds of the stream's change entries ([Message.Kind]): what players do
// to a message after it was sent, stored in the stream after it so that
// live delivery, resume and history carry it.
const (
	// KindEdit: the author changed the text of message Target.
	KindEdit = "edit"
	// KindReaction: From added (or, Removed, took back) reaction Emoji on
	// message Target; Reactions are the message's counts after it.
	KindReaction = "reaction"
)

// Quote is the short quote of the message a reply answers.
type Quote struct {
	ID   string `json:"id"`
	From string `json:"from,omitempty"`
	Name string `json:"name,omitempty"`
	Text string `json:"text"`
}

// MaxQuoteLen is the longest quote of a replied message, in characters.
const MaxQuoteLen = 100

// NewQuote returns the quote of message m: its id, sender and at most
// [MaxQuoteLen] characters of its text.
func NewQuote(m Message) *Quote {
	text := m.Text
	if utf8.RuneCountInString(text) > MaxQuoteLen {
		n := 0
		for i := range text {
			if n == MaxQuoteLen {
				text = text[:i] + "…"
				break
			}
			n++
		}
	}
	return &Quote{ID: m.ID, From: m.From, Name: m.Name, Text: text}
}

// Attachment is a reference to a file a message shows; Kaiwa stores no
// files. Type is one of [AttachmentTypes].
type Attachment struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	Name   string `json:"name,omitempty"`
}

// AttachmentTypes are the types an attachment may have.
var AttachmentTypes = []string{"image", "video", "audio", "file", "link"}

// Limits of an attachment.
const (
	MaxAttachmentURL  = 2048  // bytes
	MaxAttachmentName = 200   // characters
	MaxAttachmentDim  = 16384 // pixels, width and height
)

// CheckAttachments validates a message's attachments against the tenant's
// limit: at most MaxAttachments, each of a known type, an https URL of at
// most [MaxAttachmentURL] bytes with a host, dimensions from 0 to
// [MaxAttachmentDim] and a name of at most [MaxAttachmentName]
// characters.
func CheckAttachments(list []Attachment, s Settings) error {
	s = s.WithDefaults()
	if len(list) > s.MaxAttachments {
		return Errorf(CodeTooLarge, "%d attachments, the limit is %d", len(list), s.MaxAttachments)
	}
	for i, a := range list {
		known := false
		for _, t := range AttachmentTypes {
			known = known || a.Type == t
		}
		switch {
		case !known:
			return Errorf(CodeBadRequest, "attachments[%d]: type must be one of %s", i, strings.Join(AttachmentTypes, ", "))
		case len(a.URL) > MaxAttachmentURL:
			return Errorf(CodeTooLarge, "attachments[%d]: url longer than %d bytes", i, MaxAttachmentURL)
		case !httpsURL(a.URL):
			return Errorf(CodeBadRequest, "attachments[%d]: url must be an https URL", i)
		case a.Width < 0 || a.Height < 0 || a.Width > MaxAttachmentDim || a.Height > MaxAttachmentDim:
			return Errorf(CodeBadRequest, "attachments[%d]: width and height must be between 0 and %d", i, MaxAttachmentDim)
		case !utf8.ValidString(a.Name) || utf8.RuneCountInString(a.Name) > MaxAttachmentName:
			return Errorf(CodeBadRequest, "attachments[%d]: name must be valid UTF-8 of at most %d characters", i, MaxAttachmentName)
		case strings.IndexFunc(a.Name, unicode.IsControl) >= 0:
			return Errorf(CodeBadRequest, "attachments[%d]: name must not hold control characters", i)
		}
	}
	return nil
}

// httpsURL reports whether s is an absolute https URL with a host and no
// user information, spaces or control characters.
func httpsURL(s string) bool {
	if strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
}

// Reaction is how many users reacted to a message with one emoji.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
}

// Limits of reactions.
const (
	// MaxEmojiRunes and MaxEmojiBytes bound one reaction string.
	MaxEmojiRunes = 8
	MaxEmojiBytes = 32
	// MaxReactionKinds bounds the distinct reactions of one message.
	MaxReactionKinds = 20
)

// CheckEmoji validates a reaction string: one of the tenant's Reactions
// when it set them, else a short string (at most [MaxEmojiRunes]
// characters and [MaxEmojiBytes] bytes of UTF-8) without spaces or
// control characters.
func CheckEmoji(e string, s Settings) error {
	switch {
	case e == "":
		return Errorf(CodeBadRequest, "emoji is required")
	case len(e) > MaxEmojiBytes || !utf8.ValidString(e) || utf8.RuneCountInString(e) > MaxEmojiRunes:
		return Errorf(CodeTooLarge, "a reaction is at most %d characters (%d bytes)", MaxEmojiRunes, MaxEmojiBytes)
	case strings.IndexFunc(e, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return Errorf(CodeBadRequest, "a reaction must not hold spaces or control characters")
	}
	if len(s.Reactions) > 0 {
		for _, r := range s.Reactions {
			if r == e {
				return nil
			}
		}
		return Errorf(CodeBadRequest, "this title does not offer that reaction")
	}
	return nil
}

// checkPlayers validates the settings of what players do.
func (s Settings) checkPlayers() error {
	switch {
	case s.EditWindowS < 0 || s.EditWindowS > 7*24*3600:
		return Errorf(CodeBadRequest, "edit_window_s must be between 1 and %d", 7*24*3600)
	case s.MaxAttachments < 0 || s.MaxAttachments > 16:
		return Errorf(CodeBadRequest, "max_attachments must be between 1 and 16")
	case len(s.Reactions) > 100:
		return Errorf(CodeBadRequest, "at most 100 reactions")
	}
	for _, r := range s.Reactions {
		if err := CheckEmoji(r, Settings{}); err != nil {
			return Errorf(CodeBadRequest, "reactions: %s", ErrorMessage(err))
		}
	}
	return nil
}

// Cursor is how far a user has read a channel: every message up to Seq.
type Cursor struct {
	Channel   string    `json:"ch"`
	Seq       uint64    `json:"seq"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Unread is a channel's unread messages for a user: Count messages of
// others after the user's cursor Read (at most [MaxUnreadCount]; a
// channel never read counts from its start), as the message log has them.
type Unread struct {
	Channel string `json:"ch"`
	Count   int    `json:"count"`
	Read    uint64 `json:"read"`
}

// MaxUnreadCount caps an unread count ("999+"), so that counting stays
// cheap for channels far behind.
const MaxUnreadCount = 999

// MaxBlocks bounds the users one user may block.
const MaxBlocks = 1000

// Search limits: a query is 2 to MaxSearchLen characters (after
// normalisation, at least 2 letters).
const (
	MinSearchLen      = 2
	MaxSearchLen      = 100
	MaxSearchChannels = 500
)

// SearchQuery selects messages of a tenant's log whose text holds Q, in
// the normalised form NG words are matched in (case, width and kana
// folded), newest first. Channels, when not empty, are the only channels
// searched; User, Since and Until narrow it further. Before is a page's
// Next.
type SearchQuery struct {
	Q        string
	Channels []string
	User     string
	Since    time.Time
	Until    time.Time
	Before   string
	Limit    int
}

// Check validates a search query: its text (see [SearchQuery]), its
// channels and user.
func (q SearchQuery) Check() error {
	n := utf8.RuneCountInString(q.Q)
	switch {
	case !utf8.ValidString(q.Q):
		return Errorf(CodeBadRequest, "q is not valid UTF-8")
	case n > MaxSearchLen:
		return Errorf(CodeTooLarge, "q has %d characters, the limit is %d", n, MaxSearchLen)
	case n < MinSearchLen:
		return Errorf(CodeBadRequest, "q must have at least %d characters", MinSearchLen)
	case len(q.Channels) > MaxSearchChannels:
		return Errorf(CodeTooLarge, "at most %d channels", MaxSearchChannels)
	case q.Limit < 0:
		return Errorf(CodeBadRequest, "limit must not be negative")
	}
	for _, ch := range q.Channels {
		if err := CheckChannel(ch); err != nil {
			return err
		}
	}
	if q.User != "" {
		return CheckID("user", q.User)
	}
	return nil
}

// SearchPage is one page of search results; Next, when not empty, is the
// Before of the following page.
type SearchPage struct {
	Messages []Message `json:"messages"`
	Next     string    `json:"next,omitempty"`
}

// MessageEdit is one edit of a message, as the log keeps it for
// operators: the text before and after, who edited it and when.
type MessageEdit struct {
	ID       string `json:"id"`
	Channel  string `json:"ch"`
	Seq      uint64 `json:"seq"`
	By       string `json:"by"`
	Previous string `json:"previous"`
	Text     string `json:"text"`
	EditedAt int64  `json:"edited_at"`
}

// PlayerStart is what a new session learns of its user's own state: the
// users it blocks and the unread counts of its channels.
type PlayerStart struct {
	Blocks []string `json:"blocks,omitempty"`
	Unread []Unread `json:"unread,omitempty"`
}

// PlayerStartRequest is one new session's ask for its user's own state
// ([Players.Start]): the user and the channels to count unread messages
// in.
type PlayerStartRequest struct {
	Tenant   TenantID
	User     string
	Channels []string
}

// PlayerStartResult answers one [PlayerStartRequest].
type PlayerStartResult struct {
	Start PlayerStart
	Err   error
}

// Apply changes message m by change entry c (a change of m): an edit's
// text and time, a reaction's counts.
func (m *Message) Apply(c *Message) {
	switch c.Kind {
	case KindEdit:
		m.Text, m.EditedAt = c.Text, c.EditedAt
	case KindReaction:
		m.Reactions = c.Reactions
	}
}

// PresenceTyping is the [Presence] event of a user typing in a channel:
// ephemeral, never stored or replayed.
const PresenceTyping = "typing"
