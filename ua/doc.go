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
// order, and one outbox (package ua/internal/outbox), which owns
// everything from "the hub has a frame for this session" to "the bytes
// are on the socket". Giving the outbox a frame never blocks. It is
// bounded in bytes ([Config.SendQueueBytes], 1 MiB by default): a client
// whose outbox would pass the bound is closed as a slow consumer (4008)
// after what it was given before, and nobody else waits. A frame for an
// idle socket is written at once by the goroutine that gives it (the
// fan-out), with no queue, no goroutine hand-off and no copy; a v2 op is
// framed alone for it. What the socket does not take is handed to a
// flusher goroutine, the only writer until the outbox is idle again,
// which writes everything waiting with writev as the socket drains and
// packs queued v2 ops into frames of up to 64. A resume's replay waits
// for room instead (up to the write timeout), filling at most half the
// outbox so that live traffic keeps the rest. A close sends what the
// outbox holds, then the closing notices, then the WebSocket close; what
// is given after it is dropped. The WebSocket library (coder/websocket)
// does the handshake, the reading and the control frames, which it writes
// through the outbox.
//
// # Fencing
//
// A UA whose bus is a [BusPinger] checks it several times a second. When
// it has been unreachable for [Config.FenceAfter] the UA fences itself:
// it asks every session to reconnect elsewhere, refuses new ones with 503
// and fails /readyz, so that no client stays on a UA that can neither
// hear its channels nor publish. When the bus answers again, the UA reads
// what its channels missed from the stream, then accepts sessions.
//
// # Lock order
//
// Every mutex of the package, in the order they may be taken (a lock is
// only taken while holding those listed before it):
//
//  1. hubShard.mu (a shard's rooms and their members). Held while a
//     room's bus subscription is made or ended, and while joining checks
//     the session's channel count (session.mu). A room's sessions()
//     takes it to make a new snapshot after its members changed, so it
//     is called holding no other lock of the package (sessionsLocked
//     under this one).
//  2. room.feedsMu (a user room's feeds), taken alone or under the shard
//     lock when the room closes.
//  3. session.mu (joined channels, membership, the resume gate).
//  4. The outbox's mu, taken under session.mu when the resume gate
//     releases held messages, and under the WebSocket library's
//     frame-write lock when the library writes a control frame. Under
//     it, the outbox takes the session clock's lock (framing v2 ops) and
//     the socket's write lock (a direct write); its flusher takes the
//     socket's write lock without it.
//
// The rest are leaves, never held while taking another lock of the
// package: feed.mu (taken under the shard lock or room.feedsMu when a room
// closes), room.recentMu, room.leavingMu (the presence grace's held
// leaves), Server.mu (the sessions), Server.tmu (the
// tenants), tenantState.ngMu (held across an NG list's load, a directory
// request), tenantState.hitMu and replayBudget.mu.
//
// No lock is held while delivering to sessions (a fan-out reads an
// immutable snapshot of a room's sessions), while calling into the
// WebSocket library, or while closing a socket.
package ua
