// Package bench is Kaiwa's load generator, behind "kaiwa bench": it
// measures a UA (or nginx in front of UAs, or the bare reference server of
// package bench/bare) from the same machine, with the project's own client
// package.
//
// # Scenarios
//
//   - idle: N clients connect and are held. Memory per connection of each
//     named server process, idle CPU per 10,000 connections, connect rate
//     and connect latency.
//   - fanout: N clients in C channels; in each channel some clients also
//     publish, at a total rate, with payloads of a given size.
//   - room: fanout with one channel: a world chat during an event.
//   - dm: clients in pairs, each sending direct messages to its partner.
//   - storm: every client is dropped at once (its TCP connection closed)
//     and reconnects: the time until all are back and the server work it
//     caused.
//
// # Measuring
//
// Every message's data object carries {"p": publisher, "n": sequence,
// "t": send time in Unix nanoseconds} ([Payload]). Receivers read it in
// place on each connection's reader goroutine
// ([client.Options.OnMessage]: no decoding of the op, no allocation, no
// hand-off to another goroutine), record the end-to-end latency in a
// [Histogram] (log-linear buckets, no allocation per sample) and count
// each message once per receiver in a [Ledger], which tells, exactly, how
// many deliveries were lost or duplicated. A load tool too slow to read
// shows as the server closing its clients as slow consumers.
// Publishers keep their schedule with a [Pacer], which does not drift.
// They are clients sending the say op ([PublishWS]), or, in fanout and
// room, a game server posting system messages to the tenant API
// ([PublishAPI]) with a bounded number of requests in flight; the data of
// a system message reaches clients byte for byte, so receivers read it
// the same way, and since no publisher is then a client, every client of
// a channel is due every message. A 2xx answer is the acknowledgement.
// Server processes named by PID are sampled from /proc (CPU from
// /proc/PID/stat, RSS from /proc/PID/status) before the clients connect,
// once they are connected, and at the start and end of the measurement
// window; the load tool's own CPU comes from getrusage.
//
// # Reaching many connections
//
// The tool raises its open-file limit to the hard limit, and spreads
// connections over several loopback source addresses (127.0.0.2 on), one
// shared http.Client per address, to pass the ephemeral-port limit of one
// address pair. When a run needs more connections than one process may
// hold ([Config.PerProcess]), it starts worker processes ("kaiwa bench
// worker", see [ServeWorker]): each gets its [Plan] as a JSON line on
// stdin and reports progress and its [WorkerResult] as JSON lines on
// stdout; the coordinator merges them.
//
// # Bounds
//
// Every loop is bounded in count and in time: a run has a measurement
// window ([Config.Duration]) and a hard deadline ([Config.Deadline]), each
// publisher a maximum number of messages, each connection attempt a
// timeout. Targets must be loopback addresses: the tool refuses anything
// else.
//
// # Output
//
// A progress line every second (stderr in the command), then a human
// summary ([Result.WriteSummary]) and the [Result] as one JSON line.
package bench
