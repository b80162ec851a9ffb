package kaiwa

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Tenant is a game title using Kaiwa.
type Tenant struct {
	ID        TenantID  `json:"id"`
	Name      string    `json:"name"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	Settings  Settings  `json:"settings"`
}

// Settings are a tenant's limits and policies. The zero value of a field
// means "use the default"; call [Settings.WithDefaults] before reading one.
type Settings struct {
	// MaxTextLen is the longest message text in characters (runes).
	MaxTextLen int `json:"max_text_len,omitempty"`
	// MaxDataBytes is the largest "data" object of a message, in bytes.
	MaxDataBytes int `json:"max_data_bytes,omitempty"`
	// RateOps and RateBurst bound the ops a connection may send per second.
	RateOps   float64 `json:"rate_ops,omitempty"`
	RateBurst int     `json:"rate_burst,omitempty"`
	// PresenceLimit: channels with more members send no presence events.
	PresenceLimit int `json:"presence_limit,omitempty"`
	// MaxChannelsPerConn bounds the channels one connection may be in.
	MaxChannelsPerConn int `json:"max_channels_per_conn,omitempty"`
	// MaxConnsPerUser bounds one user's concurrent connections per UA process.
	MaxConnsPerUser int `json:"max_conns_per_user,omitempty"`
	// MaxChannelMembers bounds a channel's persistent membership.
	MaxChannelMembers int `json:"max_channel_members,omitempty"`

	// NGPolicy is what happens to a message with an NG word: [NGReject]
	// (the default) or [NGMask].
	NGPolicy string `json:"ng_policy,omitempty"`
	// NGEscalateHits NG-word hits within NGEscalateWindowS seconds mute the
	// user for NGEscalateMuteS seconds. 0 hits (the default) is off.
	NGEscalateHits    int `json:"ng_escalate_hits,omitempty"`
	NGEscalateWindowS int `json:"ng_escalate_window_s,omitempty"`
	NGEscalateMuteS   int `json:"ng_escalate_mute_s,omitempty"`

	// RetentionDays is how long the message and event logs keep entries.
	RetentionDays int `json:"retention_days,omitempty"`
	// AllowedVersions, when not empty, are the only protocol versions the
	// tenant's clients may use ("v1", "v2").
	AllowedVersions []string `json:"allowed_versions,omitempty"`
	// AllowedOrigins, when not empty, are the only Origin header values
	// browser clients may connect from ("https://game.example.com"; a
	// leading "*." matches any subdomain). Clients that send no Origin
	// (native games) are not affected.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// APIRate and APIBurst bound the tenant API calls per second, per API
	// process. The defaults (2,000 a second, bursts of 4,000) fit a game
	// server at launch issuing a token per player login; one API process
	// issued about 5,500 tokens a second on a 2-core machine with its
	// MySQL beside it (BenchmarkIssueToken, docs/benchmarks.md).
	APIRate  float64 `json:"api_rate,omitempty"`
	APIBurst int     `json:"api_burst,omitempty"`

	// EditWindowS is how long after sending its author may edit or
	// delete a message, in seconds. Default 900.
	EditWindowS int `json:"edit_window_s,omitempty"`
	// MaxAttachments bounds the attachments of one message. Default 4.
	MaxAttachments int `json:"max_attachments,omitempty"`
	// Reactions, when not empty, are the only reaction strings players
	// may use; otherwise any short string ([CheckEmoji]) is allowed.
	Reactions []string `json:"reactions,omitempty"`
	// UserMsgsPerSec bounds the messages (say, dm) one user sends per
	// second over all of the user's connections on every UA;
	// TenantMsgsPerSec those of all the tenant's users together. 0 (the
	// default): no limit. Enforced across UAs within a stated error (see
	// docs/api.md).
	UserMsgsPerSec   int `json:"user_msgs_per_sec,omitempty"`
	TenantMsgsPerSec int `json:"tenant_msgs_per_sec,omitempty"`
	// BeforeSend is the tenant's before-send hooks ([BeforeSend]).
	BeforeSend BeforeSend `json:"before_send,omitzero"`
}

// NG-word policies.
const (
	NGReject = "reject"
	NGMask   = "mask"
)

// DefaultSettings returns the settings a tenant has until it changes them.
func DefaultSettings() Settings {
	return Settings{
		MaxTextLen:         1000,
		MaxDataBytes:       4096,
		RateOps:            10,
		RateBurst:          20,
		PresenceLimit:      500,
		MaxChannelsPerConn: 100,
		MaxConnsPerUser:    10,
		MaxChannelMembers:  100000,
		NGPolicy:           NGReject,
		NGEscalateWindowS:  60,
		NGEscalateMuteS:    300,
		RetentionDays:      90,
		APIRate:            2000,
		APIBurst:           4000,
		EditWindowS:        900,
		MaxAttachments:     4,
	}
}

// WithDefaults returns s with every unset field taken from [DefaultSettings].
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	if s.MaxTextLen <= 0 {
		s.MaxTextLen = d.MaxTextLen
	}
	if s.MaxDataBytes <= 0 {
		s.MaxDataBytes = d.MaxDataBytes
	}
	if s.RateOps <= 0 {
		s.RateOps = d.RateOps
	}
	if s.RateBurst <= 0 {
		s.RateBurst = d.RateBurst
	}
	if s.PresenceLimit <= 0 {
		s.PresenceLimit = d.PresenceLimit
	}
	if s.MaxChannelsPerConn <= 0 {
		s.MaxChannelsPerConn = d.MaxChannelsPerConn
	}
	if s.MaxConnsPerUser <= 0 {
		s.MaxConnsPerUser = d.MaxConnsPerUser
	}
	if s.MaxChannelMembers <= 0 {
		s.MaxChannelMembers = d.MaxChannelMembers
	}
	if s.NGPolicy == "" {
		s.NGPolicy = d.NGPolicy
	}
	if s.NGEscalateWindowS <= 0 {
		s.NGEscalateWindowS = d.NGEscalateWindowS
	}
	if s.NGEscalateMuteS <= 0 {
		s.NGEscalateMuteS = d.NGEscalateMuteS
	}
	if s.RetentionDays <= 0 {
		s.RetentionDays = d.RetentionDays
	}
	if s.APIRate <= 0 {
		s.APIRate = d.APIRate
	}
	if s.APIBurst <= 0 {
		s.APIBurst = d.APIBurst
	}
	if s.EditWindowS <= 0 {
		s.EditWindowS = d.EditWindowS
	}
	if s.MaxAttachments <= 0 {
		s.MaxAttachments = d.MaxAttachments
	}
	return s
}

// Check validates settings an operator sets, returning a [CodeBadRequest]
// error for the first fault. Zero values are allowed (they mean default).
func (s Settings) Check() error {
	switch {
	case s.MaxTextLen < 0 || s.MaxTextLen > 100000:
		return Errorf(CodeBadRequest, "max_text_len must be between 1 and 100000")
	case s.MaxDataBytes < 0 || s.MaxDataBytes > 64<<10:
		return Errorf(CodeBadRequest, "max_data_bytes must be between 1 and 65536")
	case s.RateOps < 0 || s.RateBurst < 0 || s.APIRate < 0 || s.APIBurst < 0,
		math.IsNaN(s.RateOps) || math.IsInf(s.RateOps, 0) || math.IsNaN(s.APIRate) || math.IsInf(s.APIRate, 0):
		return Errorf(CodeBadRequest, "rates must be finite and not negative")
	case s.UserMsgsPerSec < 0 || s.TenantMsgsPerSec < 0 || s.UserMsgsPerSec > 100000 || s.TenantMsgsPerSec > 1000000:
		return Errorf(CodeBadRequest, "message rates must be between 0 and 100000 (user), 1000000 (tenant)")
	case s.PresenceLimit < 0 || s.MaxChannelsPerConn < 0 || s.MaxConnsPerUser < 0 || s.MaxChannelMembers < 0:
		return Errorf(CodeBadRequest, "limits must not be negative")
	case s.NGPolicy != "" && s.NGPolicy != NGReject && s.NGPolicy != NGMask:
		return Errorf(CodeBadRequest, "ng_policy must be %q or %q", NGReject, NGMask)
	case s.NGEscalateHits < 0 || s.NGEscalateWindowS < 0 || s.NGEscalateMuteS < 0:
		return Errorf(CodeBadRequest, "escalation values must not be negative")
	case s.RetentionDays < 0 || s.RetentionDays > 3650:
		return Errorf(CodeBadRequest, "retention_days must be between 1 and 3650")
	}
	if err := s.checkPlayers(); err != nil {
		return err
	}
	if err := s.BeforeSend.Check(); err != nil {
		return err
	}
	for _, v := range s.AllowedVersions {
		if v == "" || len(v) > 16 {
			return Errorf(CodeBadRequest, "invalid version %q", v)
		}
	}
	for _, o := range s.AllowedOrigins {
		if o == "" || len(o) > 256 || strings.ContainsAny(o, " \t\r\n") {
			return Errorf(CodeBadRequest, "invalid origin %q", o)
		}
	}
	return nil
}

// TokenRequest asks for a user token. Join and Publish are channel-name
// prefixes; "*" matches any channel.
type TokenRequest struct {
	User    string        `json:"user"`
	Name    string        `json:"name"`
	TTL     time.Duration `json:"-"`
	Join    []string      `json:"join"`
	Publish []string      `json:"publish"`
}

// MaxTokenTTL is the longest lifetime a user token may have.
const MaxTokenTTL = 30 * 24 * time.Hour

// MaxNameLen is the longest display name, in characters.
const MaxNameLen = 64

// MaxPermissions bounds the number of join or publish prefixes of a token.
const MaxPermissions = 64

// Check validates r, returning a [CodeBadRequest] error for the first fault.
func (r TokenRequest) Check() error {
	if err := CheckID("user", r.User); err != nil {
		return err
	}
	if !utf8.ValidString(r.Name) || utf8.RuneCountInString(r.Name) > MaxNameLen {
		return Errorf(CodeBadRequest, "name must be valid UTF-8 of at most %d characters", MaxNameLen)
	}
	if r.TTL <= 0 || r.TTL > MaxTokenTTL {
		return Errorf(CodeBadRequest, "ttl_seconds must be between 1 and %d", int(MaxTokenTTL/time.Second))
	}
	for _, list := range [][]string{r.Join, r.Publish} {
		if len(list) > MaxPermissions {
			return Errorf(CodeBadRequest, "at most %d permission prefixes", MaxPermissions)
		}
		for _, p := range list {
			if p != "*" && (p == "" || len(p) > MaxChannelLen || !ValidChannel(p)) {
				return Errorf(CodeBadRequest, "invalid permission prefix %q", p)
			}
		}
	}
	return nil
}

// IssuedToken is a newly made user token. Token is shown once; only its hash
// is stored.
type IssuedToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Identity is who a user token says its bearer is, and what it may do.
type Identity struct {
	Tenant    TenantID  `json:"tenant"`
	User      string    `json:"user"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	Join      []string  `json:"join"`
	Publish   []string  `json:"publish"`
	// TokenID is a signed token's id (jti), by which it can be revoked.
	TokenID string `json:"jti,omitempty"`
}

// CanJoin reports whether the identity's join prefixes allow channel ch.
func (id Identity) CanJoin(ch string) bool { return matchPrefixes(id.Join, ch) }

// CanPublish reports whether the identity's publish prefixes allow channel
// ch. A direct message to another user needs a publish prefix matching its
// direct channel ("dm:" or "*").
func (id Identity) CanPublish(ch string) bool { return matchPrefixes(id.Publish, ch) }

func matchPrefixes(prefixes []string, ch string) bool {
	for _, p := range prefixes {
		if p == "*" || strings.HasPrefix(ch, p) {
			return true
		}
	}
	return false
}

// MaxTitleLen is the longest channel title, in characters.
const MaxTitleLen = 200

// Check validates a channel an API call creates or updates: its name (not a
// reserved one), kind (required) and title.
func (c Channel) Check() error {
	if err := CheckChannel(c.Name); err != nil {
		return err
	}
	if err := CheckManaged(c.Name); err != nil {
		return err
	}
	if c.Kind != ChannelOpen && c.Kind != ChannelClosed {
		return Errorf(CodeBadRequest, "kind must be %q or %q", ChannelOpen, ChannelClosed)
	}
	if !utf8.ValidString(c.Title) || utf8.RuneCountInString(c.Title) > MaxTitleLen {
		return Errorf(CodeBadRequest, "title must be valid UTF-8 of at most %d characters", MaxTitleLen)
	}
	return nil
}

// ChannelKind says who may join a channel.
type ChannelKind string

// The channel kinds.
const (
	// ChannelOpen: any user whose token permits it may join.
	ChannelOpen ChannelKind = "open"
	// ChannelClosed: only members set through the tenant API may join.
	ChannelClosed ChannelKind = "closed"
)

// Channel is a named conversation of a tenant. Channels are created through
// the tenant API before anyone can join them; a direct channel ("dm:a:b")
// exists implicitly and is closed to all but its two users.
type Channel struct {
	Tenant    TenantID    `json:"-"`
	Name      string      `json:"name"`
	Kind      ChannelKind `json:"kind"`
	Title     string      `json:"title"`
	CreatedAt time.Time   `json:"created_at"`
}

// Message is a chat or system message, the version-neutral form the bus
// carries. ID and Seq are assigned by the stream; Prev is the Seq of the
// previous message in the same channel (0 if none).
type Message struct {
	Tenant  TenantID        `json:"tenant"`
	Channel string          `json:"ch"`
	ID      string          `json:"id,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Prev    uint64          `json:"prev,omitempty"`
	From    string          `json:"from,omitempty"`
	Name    string          `json:"name,omitempty"`
	Text    string          `json:"text"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      int64           `json:"ts"`
	System  bool            `json:"system,omitempty"`
	// CID is the sender's client message id, used to de-duplicate resends.
	CID string `json:"cid,omitempty"`

	// What players expect of a message (domain_players.go): the message
	// it replies to with a short quote of it, attachments by reference,
	// when it was last edited and its reactions.
	ReplyTo     string       `json:"reply_to,omitempty"`
	Quote       *Quote       `json:"quote,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	EditedAt    int64        `json:"edited_at,omitempty"`
	Reactions   []Reaction   `json:"reactions,omitempty"`
	// Kind is "" for a message; a change entry of the stream (an edit or
	// a reaction, [KindEdit], [KindReaction]) changes message Target of
	// the same channel. A reaction change names its Emoji, whether From
	// took it back (Removed), and the counts after it (Reactions).
	Kind    string `json:"kind,omitempty"`
	Target  string `json:"target,omitempty"`
	Emoji   string `json:"emoji,omitempty"`
	Removed bool   `json:"removed,omitempty"`
}

// Presence is a join or leave of a user in a channel.
type Presence struct {
	Tenant  TenantID `json:"tenant"`
	Channel string   `json:"ch"`
	User    string   `json:"user"`
	Name    string   `json:"name"`
	// Event is "join" or "leave".
	Event string `json:"event"`
	// Gone marks a leave because the user's session ended (a disconnect),
	// not because the user left the channel. Receivers may hold such a
	// leave for a moment and drop it, with the join that follows, when the
	// user is back by then: a reconnect is no news to the others. It is
	// never sent to clients.
	Gone bool `json:"gone,omitempty"`
}

// CheckContent validates a message's text and data against the tenant's
// limits: valid UTF-8, text of at most MaxTextLen characters, data (if any)
// a JSON object of at most MaxDataBytes, and not both empty. The UA and the
// tenant API both call it, so the rule lives in one place.
func CheckContent(text string, data []byte, s Settings) error {
	s = s.WithDefaults()
	if !utf8.ValidString(text) {
		return Errorf(CodeBadRequest, "text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > s.MaxTextLen {
		return Errorf(CodeTooLarge, "text has %d characters, the limit is %d", n, s.MaxTextLen)
	}
	if len(data) > 0 && !bytes.Equal(data, []byte("null")) {
		if len(data) > s.MaxDataBytes {
			return Errorf(CodeTooLarge, "data has %d bytes, the limit is %d", len(data), s.MaxDataBytes)
		}
		if !utf8.Valid(data) || !json.Valid(data) {
			return Errorf(CodeBadRequest, "data is not valid JSON")
		}
		if b := bytes.TrimLeft(data, " \t\r\n"); len(b) == 0 || b[0] != '{' {
			return Errorf(CodeBadRequest, "data must be a JSON object")
		}
		return nil
	}
	if text == "" {
		return Errorf(CodeBadRequest, "text or data is required")
	}
	return nil
}

// Event types of the event log.
const (
	EventConnect         = "connect"
	EventDisconnect      = "disconnect"
	EventJoin            = "join"
	EventLeave           = "leave"
	EventSay             = "say"
	EventSystem          = "system"
	EventTokenRevoked    = "token_revoked"
	EventMemberAdd       = "member_added"
	EventMemberRemove    = "member_removed"
	EventChannelPut      = "channel_put"
	EventChannelDel      = "channel_deleted"
	EventNGBlocked       = "ng_blocked"
	EventNGMasked        = "ng_masked"
	EventKick            = "kick"
	EventBan             = "ban"
	EventUnban           = "unban"
	EventMute            = "mute"
	EventUnmute          = "unmute"
	EventMsgDeleted      = "message_deleted"
	EventNGChanged       = "ng_list_changed"
	EventSettingsChanged = "settings_changed"
	EventKeyAdded        = "key_added"
	EventKeyRevoked      = "key_revoked"
	EventTenantCreated   = "tenant_created"
	EventTenantDisabled  = "tenant_disabled"
	EventMsgEdited       = "message_edited"
	EventReactionAdded   = "reaction_added"
	EventReactionRemoved = "reaction_removed"
	EventBlock           = "block"
	EventUnblock         = "unblock"
)

// NGList is a tenant's NG-word list: the words to catch, the allow-list of
// harmless longer words that contain one (a match inside an allowed word
// is not a hit), and the policy. Words are stored as given; matching
// normalises them.
type NGList struct {
	Policy string   `json:"policy"`
	Words  []string `json:"words"`
	Allow  []string `json:"allow"`
}

// MaxNGWords bounds a tenant's NG list (words and allow-list together);
// MaxNGWordLen bounds one entry, in characters.
const (
	MaxNGWords   = 100000
	MaxNGWordLen = 64
)

// Check validates a list given to change a tenant's: its policy (empty,
// [NGReject] or [NGMask]), its size (at most [MaxNGWords] entries) and
// every entry ([CheckNGWord]).
func (l NGList) Check() error {
	if l.Policy != "" && l.Policy != NGReject && l.Policy != NGMask {
		return Errorf(CodeBadRequest, "policy must be %q or %q", NGReject, NGMask)
	}
	if n := len(l.Words) + len(l.Allow); n > MaxNGWords {
		return Errorf(CodeTooLarge, "%d entries, the limit is %d", n, MaxNGWords)
	}
	for _, list := range []struct {
		name    string
		entries []string
	}{{"words", l.Words}, {"allow", l.Allow}} {
		for i, w := range list.entries {
			if err := CheckNGWord(w); err != nil {
				return Errorf(CodeBadRequest, "%s[%d]: %s", list.name, i, ErrorMessage(err))
			}
		}
	}
	return nil
}

// CheckNGWord validates one entry of an NG list or its allow-list: valid
// UTF-8, not blank, no control characters, at most [MaxNGWordLen]
// characters.
func CheckNGWord(w string) error {
	switch {
	case !utf8.ValidString(w):
		return Errorf(CodeBadRequest, "not valid UTF-8")
	case strings.TrimSpace(w) == "":
		return Errorf(CodeBadRequest, "an entry must not be blank")
	case utf8.RuneCountInString(w) > MaxNGWordLen:
		return Errorf(CodeBadRequest, "an entry is at most %d characters", MaxNGWordLen)
	case strings.IndexFunc(w, unicode.IsControl) >= 0:
		return Errorf(CodeBadRequest, "an entry must not hold control characters")
	}
	return nil
}

// SanctionKind is a kind of moderation that lasts.
type SanctionKind string

// The sanctions.
const (
	// SanctionBan: the user's sessions are closed and new ones refused.
	SanctionBan SanctionKind = "ban"
	// SanctionMute: the user may read but say and dm are refused.
	SanctionMute SanctionKind = "mute"
)

// Sanction is a ban or mute of a user until a time (zero: until lifted).
type Sanction struct {
	Tenant    TenantID     `json:"-"`
	User      string       `json:"user"`
	Kind      SanctionKind `json:"kind"`
	Until     time.Time    `json:"until,omitzero"`
	Reason    string       `json:"reason,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
}

// Active reports whether the sanction is in force at t.
func (s Sanction) Active(t time.Time) bool { return s.Until.IsZero() || t.Before(s.Until) }

// MaxReasonLen bounds a moderation reason, in characters.
const MaxReasonLen = 200

// Event is one entry of a tenant's event log.
type Event struct {
	Tenant  TenantID        `json:"tenant"`
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	User    string          `json:"user,omitempty"`
	Channel string          `json:"ch,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	TS      int64           `json:"ts"`
}

// MessageQuery selects messages from a tenant's message log. Before and After
// are message ids (a page's Next is one); Since and Until bound the time.
// Results are oldest first unless Desc is set.
type MessageQuery struct {
	Channel string
	User    string
	Before  string
	After   string
	Since   time.Time
	Until   time.Time
	Limit   int
	Desc    bool
}

// MessagePage is one page of a message log query. Next, when not empty, is
// the cursor for the following page: pass it as After (or Before when Desc).
type MessagePage struct {
	Messages []Message `json:"messages"`
	Next     string    `json:"next,omitempty"`
}

// EventQuery selects events from a tenant's event log, newest first.
type EventQuery struct {
	Type    string
	User    string
	Channel string
	Since   time.Time
	Until   time.Time
	Before  string
	Limit   int
}

// EventPage is one page of an event log query.
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// Now returns the current time in milliseconds since the epoch, the unit of
// every timestamp on the wire.
func Now() int64 { return time.Now().UnixMilli() }
