// Package client is a Go client for Kaiwa's WebSocket protocol, as
// specified in docs/protocol.md. Integration tests, the "kaiwa chat"
// command and the "kaiwa bench" load tool use it.
//
// # Connecting
//
// [Dial] connects to wss://HOST/{version}/ws, authenticates with a user
// token (the Authorization header, or the first frame with
// [Options.FirstFrameAuth]) and returns once the server is ready:
//
//	c, err := client.Dial(ctx, "wss://chat.example.com/v1/ws", client.Options{Token: token})
//	if err != nil {
//		return err // a *kaiwa.Error such as unauthorized or token_expired
//	}
//	defer c.Close()
//	fmt.Println("joined", c.Ready().Channels)
//
// # Sessions that reconnect
//
// A game client wants [Connect] instead: a [Session] reconnects by itself
// when its connection is lost or the server asks it to (backoff with full
// jitter, or the server's delay), resumes every channel from the last
// sequence number it saw (v2) so that each missed message arrives once and
// in order, joins again the channels it had joined, and resends a say or
// dm that was in flight with the same client message id, so it is never
// delivered twice. A refused token can be replaced on the way
// ([SessionOptions.GetToken]). A kick or ban (4003) ends the session: the
// game decides when to come back. A channel the game server took the user
// out of ("left") is not joined again. Its events add "state" and "gap":
//
//	s, err := client.Connect(ctx, "wss://chat.example.com/v2/ws", client.SessionOptions{
//		Options: client.Options{Token: token},
//	})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	if err := s.Join(ctx, "guild.42"); err != nil {
//		return err
//	}
//	id, seq, err := s.Say(ctx, "guild.42", "gg", nil)
//
// The TypeScript and Unity SDKs behave the same way. What players do
// besides chatting (docs/protocol.md §15: edits, deletions, replies,
// reactions, read cursors, blocks, typing, search) has the same methods
// on a Session as on a Conn ([Conn.Edit], [Session.Edit], ...).
//
// # Requests and events
//
// [Conn.Join], [Conn.Leave], [Conn.Say], [Conn.DM], [Conn.History] and
// [Conn.Ping] send one op each, with a ref the Conn generates, and wait for
// the reply with that ref. An "error" reply is returned as a
// [*kaiwa.Error] carrying the server's code; switch on it with
// [kaiwa.IsCode]. [Conn.Request] and [Conn.SendRaw] send arbitrary ops and
// frames, for tests of odd input.
//
// Everything else the server sends (messages, presence, membership
// changes, deletions, the closing notice, errors that answer no request)
// arrives on [Conn.Events] as an [Event]. The sender's own messages arrive
// there too; de-duplicate by [Message.ID] if you also display what you send.
//
// A caller that receives messages by the thousand (the load tool) sets
// [Options.OnMessage] instead: the reader hands it every message as a
// [RawMsg] (channel, seq, prev, data and the op's bytes), read in place
// without decoding the op, allocating or passing it to another goroutine.
// Everything else still arrives on Events.
//
// # Resources
//
// A Conn has exactly one goroutine, its reader. Requests wait in the
// caller's goroutine. The events channel is bounded
// ([Options.EventBuffer]); a Conn whose events are not read in time closes
// itself with [ErrSlowReader] instead of blocking, as the server does with
// a slow client. After the Conn ends, [Conn.Err] says why and
// [Conn.CloseStatus] gives the server's WebSocket close code.
//
// # Versions
//
// The protocol version comes from the URL path and stays with the Conn
// ([Conn.Version]): wss://HOST/v1/ws or wss://HOST/v2/ws. Framing is the
// version's codec; the API is the same for both, and what only v2 has is
// zero or absent in v1. This client speaks v1 and v2.
//
// # v2
//
// Every v2 frame is an envelope carrying the sender's clock and an echo
// of the peer's, so the Conn always knows the round-trip time
// ([Conn.RTT]); frames of several ops are unpacked in order. On top of v1:
//
//   - Messages carry [Message.Seq] and [Message.Prev]: a message whose Prev
//     is not the Seq of the last message seen in its channel follows a
//     gap.
//   - [Conn.SayCID] and [Conn.DMCID] send with a client message id
//     ([NewCID]) and return the message's seq; resending the same id
//     after an error or a reconnect never delivers the message twice.
//   - [Options.Resume] names the last seq seen per channel, usually
//     [Conn.LastSeqs] of the previous Conn: after ready the server replays
//     what was missed, then sends a "resumed" [Event] per channel.
//   - A "reconnect" [Event] asks the client to dial again after
//     Event.AfterMS (the server drains or upgrades).
//
// Reconnecting with resume:
//
//	resume := old.LastSeqs() // after reading old.Events() to the end
//	c, err := client.Dial(ctx, "wss://chat.example.com/v2/ws", client.Options{Token: token, Resume: resume})
//
// Detecting gaps, starting from the map the Conn was dialed with:
//
//	last := maps.Clone(resume) // nil for a fresh start
//	if last == nil {
//		last = map[string]uint64{}
//	}
//	for ev := range c.Events() {
//		if ev.Op != "msg" || ev.Msg.Seq == 0 {
//			continue
//		}
//		m := ev.Msg
//		if seen, ok := last[m.Ch]; ok && m.Prev != seen {
//			// The channel's messages after seen, up to m.Prev, are missing:
//			// read them with c.History, or show a gap.
//		}
//		last[m.Ch] = m.Seq
//	}
//
// Keep the map yourself as above rather than calling [Conn.LastSeqs] while
// reading events: the Conn counts a message once it is in the events
// channel, before the caller has read it.
package client
