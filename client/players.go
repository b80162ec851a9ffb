package client

import (
	"context"
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
)

// Unread is one channel's unread count in [Ready] and [Conn.Unread]:
// Count messages of others after the user's read cursor Read (at most
// 999), and Last, the channel's position (0 when the server did not say).
type Unread struct {
	Count int    `json:"count"`
	Read  uint64 `json:"read"`
	Last  uint64 `json:"last,omitempty"`
}

// Change is a change of a message pushed live, replayed on resume (v2):
// an "edited" (From, Text, EditedAt) or a "reaction" (User, Emoji,
// Added, Reactions: the counts after it). Seq is its place in the
// channel's stream (v2; 0 in v1).
type Change struct {
	Ch        string
	ID        string
	Seq       uint64
	From      string
	Text      string
	EditedAt  int64
	User      string
	Emoji     string
	Added     bool
	Reactions []kaiwa.Reaction
}

// Apply changes m (the message the change is about) as the change says.
func (c *Change) Apply(m *Message) {
	if c == nil || m == nil || m.ID != c.ID {
		return
	}
	if c.EditedAt != 0 {
		m.Text, m.EditedAt = c.Text, c.EditedAt
	}
	if c.Emoji != "" {
		m.Reactions = c.Reactions
	}
}

// change returns the change an "edited" or "reaction" op carries.
func (in *inOp) change() *Change {
	c := &Change{Ch: in.Ch, ID: in.ID, Seq: in.Seq}
	if in.Op == "edited" {
		c.From, c.Text, c.EditedAt = in.From, in.Text, in.EditedAt
	} else {
		c.User, c.Emoji, c.Added, c.Reactions = in.User, in.Emoji, in.Added, in.Reactions
		if c.Reactions == nil {
			c.Reactions = []kaiwa.Reaction{}
		}
	}
	return c
}

// SayOptions are what a say may carry besides its text and data.
type SayOptions struct {
	// CID is the client message id ([Conn.SayCID]).
	CID string
	// ReplyTo is the id of a message of the same channel this one
	// answers; the delivered message quotes it.
	ReplyTo string
	// Attachments are references to files (https URLs); Kaiwa stores no
	// files.
	Attachments []kaiwa.Attachment
}

// SayWith is [Conn.SayCID] with a reply and attachments.
func (c *Conn) SayWith(ctx context.Context, ch, text string, data json.RawMessage, o SayOptions) (id string, seq uint64, err error) {
	r, err := c.request(ctx, outOp{Op: "say", Ch: ch, Text: text, CID: o.CID, ReplyTo: o.ReplyTo, Attachments: o.Attachments}, data, "ok")
	return r.ID, r.Seq, err
}

// Edit replaces the text of the user's own message id in ch (within the
// title's edit window). seq is the edit's place in the stream (v2).
func (c *Conn) Edit(ctx context.Context, ch, id, text string) (seq uint64, err error) {
	r, err := c.request(ctx, outOp{Op: "edit", Ch: ch, ID: id, Text: text}, nil, "ok")
	return r.Seq, err
}

// Delete deletes the user's own message id in ch (within the title's
// edit window).
func (c *Conn) Delete(ctx context.Context, ch, id string) error {
	_, err := c.request(ctx, outOp{Op: "delete", Ch: ch, ID: id}, nil, "ok")
	return err
}

// React adds the user's reaction emoji to message id of ch; one of each
// emoji per user.
func (c *Conn) React(ctx context.Context, ch, id, emoji string) error {
	_, err := c.request(ctx, outOp{Op: "react", Ch: ch, ID: id, Emoji: emoji}, nil, "ok")
	return err
}

// Unreact takes back the user's reaction emoji on message id of ch.
func (c *Conn) Unreact(ctx context.Context, ch, id, emoji string) error {
	_, err := c.request(ctx, outOp{Op: "unreact", Ch: ch, ID: id, Emoji: emoji}, nil, "ok")
	return err
}

// Read marks ch read up to seq (a message's seq); the user's other
// sessions get a "read" event. It returns the cursor, which never moves
// back.
func (c *Conn) Read(ctx context.Context, ch string, seq uint64) (uint64, error) {
	r, err := c.request(ctx, outOp{Op: "read", Ch: ch, Seq: seq}, nil, "ok")
	return r.Seq, err
}

// Unread returns the unread counts of ch, or of every joined channel when
// ch is "".
func (c *Conn) Unread(ctx context.Context, ch string) (map[string]Unread, error) {
	r, err := c.request(ctx, outOp{Op: "unread", Ch: ch}, nil, "unread")
	if err != nil {
		return nil, err
	}
	var out struct {
		Unread map[string]Unread `json:"unread"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		return nil, err
	}
	return out.Unread, nil
}

// Block stops delivery of user's messages to this user, and refuses
// user's direct messages.
func (c *Conn) Block(ctx context.Context, user string) error {
	_, err := c.request(ctx, outOp{Op: "block", User: user}, nil, "ok")
	return err
}

// Unblock ends a [Conn.Block].
func (c *Conn) Unblock(ctx context.Context, user string) error {
	_, err := c.request(ctx, outOp{Op: "unblock", User: user}, nil, "ok")
	return err
}

// Typing tells the channel's other members the user is typing (in a
// direct channel, the other user). Calls closer than two seconds apart
// are passed on once.
func (c *Conn) Typing(ctx context.Context, ch string) error {
	_, err := c.request(ctx, outOp{Op: "typing", Ch: ch}, nil, "ok")
	return err
}

// Search finds messages holding q (two characters or more; case, width
// and kana folded) in ch, or in every joined channel when ch is "",
// newest first; next, when not empty, is the before of the next page.
func (c *Conn) Search(ctx context.Context, q, ch string, limit int, before string) (msgs []Message, next string, err error) {
	r, err := c.request(ctx, outOp{Op: "search", Q: q, Ch: ch, Limit: limit, Before: before}, nil, "search")
	if err != nil {
		return nil, "", err
	}
	var out struct {
		Next string `json:"next"`
	}
	_ = json.Unmarshal(r.Raw, &out)
	return r.Messages, out.Next, nil
}

// SayWith is [Session.SayCID] with a reply and attachments; a send with
// no o.CID gets a fresh one, kept across resends.
func (s *Session) SayWith(ctx context.Context, ch, text string, data json.RawMessage, o SayOptions) (id string, seq uint64, err error) {
	if o.CID == "" {
		o.CID = NewCID()
	}
	err = s.do(ctx, func(c *Conn) error {
		id, seq, err = c.SayWith(ctx, ch, text, data, o)
		return err
	})
	return id, seq, err
}

// Edit is [Conn.Edit] on the session's connection.
func (s *Session) Edit(ctx context.Context, ch, id, text string) (seq uint64, err error) {
	err = s.do(ctx, func(c *Conn) error {
		seq, err = c.Edit(ctx, ch, id, text)
		return err
	})
	return seq, err
}

// Delete is [Conn.Delete] on the session's connection.
func (s *Session) Delete(ctx context.Context, ch, id string) error {
	return s.do(ctx, func(c *Conn) error { return c.Delete(ctx, ch, id) })
}

// React is [Conn.React] on the session's connection.
func (s *Session) React(ctx context.Context, ch, id, emoji string) error {
	return s.do(ctx, func(c *Conn) error { return c.React(ctx, ch, id, emoji) })
}

// Unreact is [Conn.Unreact] on the session's connection.
func (s *Session) Unreact(ctx context.Context, ch, id, emoji string) error {
	return s.do(ctx, func(c *Conn) error { return c.Unreact(ctx, ch, id, emoji) })
}

// Read is [Conn.Read] on the session's connection.
func (s *Session) Read(ctx context.Context, ch string, seq uint64) (cursor uint64, err error) {
	err = s.do(ctx, func(c *Conn) error {
		cursor, err = c.Read(ctx, ch, seq)
		return err
	})
	return cursor, err
}

// Unread is [Conn.Unread] on the session's connection.
func (s *Session) Unread(ctx context.Context, ch string) (counts map[string]Unread, err error) {
	err = s.do(ctx, func(c *Conn) error {
		counts, err = c.Unread(ctx, ch)
		return err
	})
	return counts, err
}

// Block is [Conn.Block] on the session's connection.
func (s *Session) Block(ctx context.Context, user string) error {
	return s.do(ctx, func(c *Conn) error { return c.Block(ctx, user) })
}

// Unblock is [Conn.Unblock] on the session's connection.
func (s *Session) Unblock(ctx context.Context, user string) error {
	return s.do(ctx, func(c *Conn) error { return c.Unblock(ctx, user) })
}

// Typing is [Conn.Typing] on the session's connection.
func (s *Session) Typing(ctx context.Context, ch string) error {
	return s.do(ctx, func(c *Conn) error { return c.Typing(ctx, ch) })
}

// Search is [Conn.Search] on the session's connection.
func (s *Session) Search(ctx context.Context, q, ch string, limit int, before string) (msgs []Message, next string, err error) {
	err = s.do(ctx, func(c *Conn) error {
		msgs, next, err = c.Search(ctx, q, ch, limit, before)
		return err
	})
	return msgs, next, err
}
