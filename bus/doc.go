// Package bus is Kaiwa's message bus on NATS: one connection per process,
// multiplexing every channel, a JetStream stream for chat and system
// messages (sequence numbers, per-channel history, and the durable buffer of
// the message log), core NATS for ephemeral events and live changes, and
// request/reply for the directory the UAs ask of the API tier. A [Bus] is
// a [kaiwa.Bus] and, apart from it, the [kaiwa.Recorder] that buffers the
// event log in its own stream.
//
// # Subjects
//
// Every subject starts with the configured prefix (default "kaiwa") and then
// the tenant. Tenant, user and channel names are escaped so that no
// character can leave its subject token: bytes outside A-Z a-z 0-9 _ - :
// become %XX.
//
//	P.T.msg.c.CH        chat and system messages of channel CH (stream)
//	P.T.msg.d.A.B       direct messages between users A < B (stream)
//	P.T.live.c.CH       the stream's republished copies, carrying
//	P.T.live.d.A.B      Nats-Sequence and Nats-Last-Sequence (seq and prev)
//	P.T.ev.CH           presence and channel-wide live changes (core)
//	P.T.user.U          user-targeted live changes and system messages (core)
//	P.T.ctl             tenant-wide live changes (core)
//	P.T.dir.OP          directory requests, served by the API tier (core)
//	P.T.evlog           the event log's durable buffer (stream)
//
// # Directory
//
// The directory is what UAs ask the API tier: one operation per subject
// P.T.dir.OP, with OP one of token, session, settings, channel, member,
// channels, ng, sanctions (what a UA needs to know), and sanction, lift
// and kick (the moderation a UA applies). Each operation has a request
// type and a reply type; the client asks with one generic helper, call,
// and [Bus.ServeDirectory] answers with its counterpart, serve, on a queue
// group of the API processes. A refusal carries its [kaiwa.Error] code back
// to the UA. New sessions' lookups wait on workers of their own and are
// answered in batches by a [kaiwa.SessionResolver].
//
// # Stream payload
//
// A message is stored in the stream as a payload of its own, versioned
// JSON format ("v":1 first, then from, name, text, data byte for byte, ts,
// system, cid), which no wire codec shares: what clients receive can change
// without changing what is stored. Tenant, channel, id, seq and prev come
// from the subject and the stream, never from the payload. Every version a
// stream may hold stays readable, including version 0, written before
// payloads had a version.
//
// # Message ids
//
// A message's id is derived from its stream sequence: the stream's creation
// time in base 36, a dash, and the sequence in decimal ("t3k9zq-1042"). Ids
// are opaque to clients; the bus turns them back into sequences for history
// and deletion. A recreated stream has a new epoch, so ids never collide in
// the message log.
//
// # Concurrency
//
// A [Bus] is safe for concurrent use. A subscription's [kaiwa.Handler] has
// a function for each kind of delivery (message, presence, live change);
// the bus calls the one for what arrived, and drops a kind the handler has
// no function for. Handlers run on a fixed set of dispatch goroutines
// (messages of one subject always on the same one, in order); they must
// not block.
package bus
