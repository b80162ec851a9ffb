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
// version's codec and the same bytes are queued to every local recipient.
//
// # Sessions
//
// A session has one reader (the connection's handler goroutine), which
// decodes and executes ops in order, and one writer goroutine fed by a
// bounded queue. Adding to the queue never blocks: when it is full the
// session is closed as a slow consumer (4008) and nobody else waits.
//
// # Lock order
//
// hub shard lock, then session lock. A session's lock is never held while
// taking a shard lock.
package ua
