// Package ua is Kaiwa's user-agent server: it accepts game clients'
// WebSocket connections for one protocol version, authenticates them,
// joins them to channels, checks and publishes what they say, and fans the
// bus's messages out to its local sessions.
//
// A UA is stateful but dataless: it holds sessions, never database
// credentials. It asks the API tier (through a [kaiwa.Directory]) about
// tokens, channels and membership, and talks to everything else through a
// [kaiwa.Bus].
//
// # Fan-out
//
// The hub keeps one bus subscription per channel with local members and one
// per user with local sessions. Each delivery is encoded once by the
// version's codec and the same bytes go to every local recipient: for v1
// (one op per frame) the whole WebSocket frame, header included. A room of
// thousands is written to from several goroutines at once.
//
// # Sessions
//
// A session has one reader goroutine, which decodes and executes ops in
// order, and one writer, its wire, which puts whole frames on the socket
// in order and never blocks whoever gives it one. A frame for an idle
// socket is written at once by the goroutine that gives it (the fan-out),
// with no queue, no goroutine hand-off and no copy; frames for a backed-up
// socket wait in a bounded queue for a flusher goroutine that writes them
// with writev as the socket drains. A full queue closes the session as a
// slow consumer (4008) and nobody else waits. A batching version (v2)
// frames an op for an idle session the same way, from the giver's
// goroutine; while ops are queued (the socket is busy, or another op is
// being written) a writer goroutine packs them into frames of up to 64. The WebSocket library (coder/websocket) does the
// handshake, the reading and the control frames, which it writes through
// the same wire.
//
// # Lock order
//
// hub shard lock, then session lock. A session's lock is never held while
// taking a shard lock.
package ua
