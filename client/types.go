package client

import (
	"encoding/json"
	"fmt"

	"github.com/kaiwa-chat/kaiwa"
)

// Ready is what the server reports once a session is authenticated: who the
// token belongs to, the channels the session has already joined (the
// user's member channels), and the protocol version in use.
type Ready struct {
	User     string   `json:"user"`
	Name     string   `json:"name"`
	Channels []string `json:"channels"`
	Version  string   `json:"version"`
	// ServerTime is the server's clock in milliseconds since the epoch.
	ServerTime int64 `json:"server_time"`
	// Deprecated is set when the version is deprecated.
	Deprecated *Deprecation `json:"deprecated,omitempty"`
	// Seqs (v2) is each joined channel's position when the session
	// started: resume a channel from it when no message of it has come
	// since. Channels being resumed are not in it.
	Seqs map[string]uint64 `json:"seqs,omitempty"`
	// Unread is each joined channel's unread count, when the server
	// could tell; Blocks the users the user blocks.
	Unread map[string]Unread `json:"unread,omitempty"`
	Blocks []string          `json:"blocks,omitempty"`
}

// Deprecation tells a client that its protocol version will be retired.
type Deprecation struct {
	// Sunset is when the version stops being served (RFC 3339).
	Sunset string `json:"sunset"`
}

// Message is a chat or system message as delivered by the server, in a
// "msg" op or in a "history" reply.
type Message struct {
	Ch string `json:"ch"`
	// ID is the server's message id, opaque to clients.
	ID string `json:"id"`
	// Seq is the message's sequence number in the server's stream, and
	// Prev the Seq of the previous message of the same channel (0 for the
	// channel's first). Both are zero in v1. A message whose Prev is not
	// the Seq of the last message received in its channel follows a gap.
	Seq  uint64 `json:"seq,omitempty"`
	Prev uint64 `json:"prev,omitempty"`
	// From is the sender's user id; empty for system messages.
	From string `json:"from,omitempty"`
	Name string `json:"name,omitempty"`
	Text string `json:"text"`
	// Data is the sender's JSON object, byte for byte as relayed.
	Data json.RawMessage `json:"data,omitempty"`
	// TS is the server time of the message in milliseconds since the epoch.
	TS     int64 `json:"ts"`
	System bool  `json:"system,omitempty"`
	// ReplyTo is the id of the message this one answers, and Quote a
	// short quote of it.
	ReplyTo string       `json:"reply_to,omitempty"`
	Quote   *kaiwa.Quote `json:"quote,omitempty"`
	// Attachments are references to files the message shows.
	Attachments []kaiwa.Attachment `json:"attachments,omitempty"`
	// EditedAt is when the author last edited the text (ms since the
	// epoch; 0: never).
	EditedAt int64 `json:"edited_at,omitempty"`
	// Reactions are the message's reaction counts.
	Reactions []kaiwa.Reaction `json:"reactions,omitempty"`
}

// Presence is a user joining or leaving a channel the session is in.
type Presence struct {
	Ch   string `json:"ch"`
	User string `json:"user"`
	Name string `json:"name"`
	// Event is "join" or "leave".
	Event string `json:"event"`
}

// Closing is the notice the server sends before it closes the session.
type Closing struct {
	// Code is the WebSocket close code that follows (1001, 4001, 4003, ...).
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	// ReconnectAfterMS, when not zero, is how long to wait before
	// reconnecting.
	ReconnectAfterMS int `json:"reconnect_after_ms,omitempty"`
}

// Event is one op the server pushed: anything that is not the reply to a
// request of this [Conn]. Op names it; the field for that op is set, and
// Raw always holds the op as received.
//
//   - "msg": Msg
//   - "presence": Presence
//   - "joined": Ch (the game server added the user to the channel)
//   - "left": Ch and Reason ("removed", "channel deleted")
//   - "deleted": Ch and ID (a moderator removed that message)
//   - "closing": Closing
//   - "resumed" (v2): Ch and Recovered. After a resume ([Options.Resume])
//     the server replays each channel's missed messages as "msg" events,
//     then sends "resumed" for it; Recovered is false when the server's
//     history no longer covered the gap (messages were lost: read
//     [Conn.History] or show a gap)
//   - "reconnect" (v2): AfterMS. The server asks the client to reconnect
//     after that many milliseconds (drain, upgrade): dial again with
//     [Options.Resume] set from [Conn.LastSeqs], then close this Conn
//   - "edited": Ch, ID and Change (Text, EditedAt): the author edited
//     the message
//   - "reaction": Ch, ID and Change (User, Emoji, Added, Reactions)
//   - "read": Ch and Seq: the user read the channel up to Seq, on this
//     or another device
//   - "typing": Presence (Event "typing"): a user is typing in Ch
//   - "error": Err (an error that answers no pending request)
//   - "state" (a [Session] only): State
//   - "gap" (a [Session] only, v2): Ch and Gap
//   - any other op (a newer server's extension, or a reply nobody waits
//     for, such as the answer to a frame sent with [Conn.SendRaw]): Raw,
//     and Ref when the op carried one
type Event struct {
	Op       string
	Ref      string
	Msg      *Message
	Presence *Presence
	Ch       string
	ID       string
	Reason   string
	Closing  *Closing
	Err      *kaiwa.Error
	// Recovered is set by "resumed": the missed messages were replayed.
	Recovered bool
	// AfterMS is set by "reconnect": the delay the server asks for.
	AfterMS int
	// State is set by "state" (a [Session]'s): where it stands now.
	State State
	// Gap is set by "gap" (a [Session]'s, v2): messages of Ch it missed.
	Gap *Gap
	// Change is set by "edited" and "reaction": a change of message ID
	// of Ch.
	Change *Change
	// Seq is set by "read": the user read Ch up to it (on any device).
	Seq uint64
	Raw json.RawMessage
}

// Reply is the server's answer to a request: an "ok", "history" or
// "pong" op. Fields the op does not carry are zero; Raw holds the op as
// received.
type Reply struct {
	Op       string
	Ref      string
	Ch       string
	ID       string
	Seq      uint64
	Messages []Message
	Raw      json.RawMessage
}

// RawMsg is a "msg" op as [Options.OnMessage] receives it: the fields a
// receiver needs on every delivery, read in place, and the op itself.
// Its byte slices point into the Conn's read buffer and are valid only
// during the call: copy what you keep.
type RawMsg struct {
	// Ch is the message's channel.
	Ch string
	// Seq and Prev are the message's [Message.Seq] and [Message.Prev]
	// (zero in v1).
	Seq  uint64
	Prev uint64
	// Data is the sender's JSON value byte for byte ([Message.Data]), nil
	// when the message has none.
	Data []byte
	// Raw is the whole op as received.
	Raw []byte
}

// Message decodes the whole op, for a receiver that needs more than
// [RawMsg] reads. The result shares no memory with the RawMsg.
func (m RawMsg) Message() (Message, error) {
	in, err := decodeOp(m.Raw)
	if err != nil {
		return Message{}, fmt.Errorf("client: %w", err)
	}
	return *in.message(), nil
}
