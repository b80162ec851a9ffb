package versions

import (
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
)

// Codec reads and writes one version's frames. The UA core is
// version-neutral: a codec only turns client frames into [Command] values
// and events into bytes. Encoded ops are shared by every recipient of a
// version; [Codec.AppendFrame] wraps one or more of them into the frame a
// session writes.
//
// A Codec is stateless and safe for concurrent use.
type Codec interface {
	// DecodeFrame appends the commands of one client text frame to dst,
	// recording the frame's clocks in clk where the version has them. A
	// malformed frame yields a [*kaiwa.Error] with [kaiwa.CodeBadRequest];
	// ref is the frame's "ref" when it could be read, for the error reply.
	DecodeFrame(dst []Command, frame []byte, clk *Clock) (cmds []Command, ref string, err error)
	// EncodeMessage encodes a chat or system message as a "msg" op.
	EncodeMessage(m *kaiwa.Message) []byte
	// EncodePresence encodes a "presence" op.
	EncodePresence(p *kaiwa.Presence) []byte
	// EncodeOp encodes a reply or notice, one of the Out* types.
	EncodeOp(op any) []byte
	// MaxBatch is the most ops one frame may carry (1 for v1).
	MaxBatch() int
	// AppendFrame appends to dst a frame carrying ops (1..MaxBatch), using
	// the session's clock where the version has one.
	AppendFrame(dst []byte, ops [][]byte, clk *Clock) []byte
}

// Command is one decoded client op. Fields an op does not use are zero.
type Command struct {
	Op     string
	Ref    string
	Token  string
	Ch     string
	To     string
	Text   string
	Data   json.RawMessage
	Limit  int
	Before string
	CID    string
	Resume map[string]uint64

	// What players do: the message an op is about (ID), a reaction
	// (Emoji), a read position (Seq), another user (User), a search (Q),
	// and a say's reply and attachments.
	ID          string
	Emoji       string
	Seq         uint64
	User        string
	Q           string
	ReplyTo     string
	Attachments []kaiwa.Attachment
}

// Client op names.
const (
	OpAuth    = "auth"
	OpJoin    = "join"
	OpLeave   = "leave"
	OpSay     = "say"
	OpDM      = "dm"
	OpHistory = "history"
	OpPing    = "ping"

	OpEdit    = "edit"
	OpDelete  = "delete"
	OpReact   = "react"
	OpUnreact = "unreact"
	OpRead    = "read"
	OpUnread  = "unread"
	OpBlock   = "block"
	OpUnblock = "unblock"
	OpTyping  = "typing"
	OpSearch  = "search"
)

// OutReady is the "ready" op.
type OutReady struct {
	Op         string       `json:"op"`
	User       string       `json:"user"`
	Name       string       `json:"name"`
	Channels   []string     `json:"channels"`
	Version    string       `json:"version"`
	ServerTime int64        `json:"server_time"`
	Deprecated *Deprecation `json:"deprecated,omitempty"`
	// Seqs (v2) gives each joined channel's position: the seq up to which
	// its messages came before the session (resume from it). Channels
	// being resumed are not in it.
	Seqs map[string]uint64 `json:"seqs,omitempty"`
	// Unread gives each joined channel's unread count, the user's read
	// cursor and the channel's position, when the server could tell.
	Unread map[string]UnreadCount `json:"unread,omitempty"`
	// Blocks are the users the user blocks.
	Blocks []string `json:"blocks,omitempty"`
}

// Deprecation tells a client its version will be retired.
type Deprecation struct {
	Sunset string `json:"sunset"`
}

// OutOK is the "ok" reply.
type OutOK struct {
	Op  string `json:"op"`
	Ref string `json:"ref,omitempty"`
	Ch  string `json:"ch,omitempty"`
	ID  string `json:"id,omitempty"`
	Seq uint64 `json:"seq,omitempty"`
}

// OutJoinOK is the "ok" of a v2 join: Seq is the channel's position when
// the session joined it (0 included: the channel had no message), what a
// client resumes the channel from while no message of it has come.
type OutJoinOK struct {
	Op  string `json:"op"`
	Ref string `json:"ref,omitempty"`
	Ch  string `json:"ch"`
	Seq uint64 `json:"seq"`
}

// OutError is the "error" op. CID is set on an unavailable error of a
// say or dm whose outcome is unknown: resending with that cid cannot
// duplicate the message.
type OutError struct {
	Op      string     `json:"op"`
	Ref     string     `json:"ref,omitempty"`
	Code    kaiwa.Code `json:"code"`
	Message string     `json:"message"`
	CID     string     `json:"cid,omitempty"`
	// RetryAfterMS is set on a rate_limited error of a send refused by a
	// per-user or per-tenant limit: when to try again.
	RetryAfterMS int `json:"retry_after_ms,omitempty"`
}

// OutHistory is the "history" reply; Messages are encoded "msg" ops.
type OutHistory struct {
	Op       string            `json:"op"`
	Ref      string            `json:"ref,omitempty"`
	Ch       string            `json:"ch"`
	Messages []json.RawMessage `json:"messages"`
}

// OutClosing is sent before the server closes a session.
type OutClosing struct {
	Op               string `json:"op"`
	Code             int    `json:"code"`
	Reason           string `json:"reason"`
	ReconnectAfterMS int    `json:"reconnect_after_ms,omitempty"`
}

// OutPong answers "ping".
type OutPong struct {
	Op  string `json:"op"`
	Ref string `json:"ref,omitempty"`
}

// NewError returns the error op for err (see [kaiwa.ErrorCode]).
func NewError(ref string, err error) OutError {
	return OutError{Op: "error", Ref: ref, Code: kaiwa.ErrorCode(err), Message: kaiwa.ErrorMessage(err)}
}

// OutJoined tells a session the game server joined it to a channel.
type OutJoined struct {
	Op string `json:"op"`
	Ch string `json:"ch"`
}

// OutLeft tells a session it was taken out of a channel ("removed",
// "channel deleted").
type OutLeft struct {
	Op     string `json:"op"`
	Ch     string `json:"ch"`
	Reason string `json:"reason"`
}

// OutResumed ends the replay of one channel after a v2 resume: Recovered
// is false when history no longer covered the gap.
type OutResumed struct {
	Op        string `json:"op"`
	Ch        string `json:"ch"`
	Recovered bool   `json:"recovered"`
}

// OutReconnect asks a v2 client to reconnect after AfterMS (drain, upgrade).
type OutReconnect struct {
	Op      string `json:"op"`
	AfterMS int    `json:"after_ms"`
}
