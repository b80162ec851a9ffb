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
// ([Conn.Version]). Framing is the version's codec, so a newer version's
// envelope is added inside the package without changing this API. This
// client speaks v1.
package client
