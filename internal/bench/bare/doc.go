// Package bare is the reference the load tool measures Kaiwa against: the
// least a WebSocket fan-out server on this machine can do. It speaks just
// enough of Kaiwa's v1 protocol for "kaiwa bench": no authentication (a
// session is ready at once), "join" and "leave" answered "ok", "say"
// answered "ok" and fanned out to the channel's members as ONE encoded
// "msg" frame shared by all of them, and "ping" answered "pong".
//
// The WebSocket upgrade (Sec-WebSocket-Accept by SHA-1, then Hijack) and
// framing are written by hand. Every connection has one reader (its HTTP
// handler goroutine) and one writer goroutine fed by a bounded queue; the
// writer flushes everything queued with one writev (net.Buffers). A full
// queue closes the connection as a slow consumer. There is nothing else:
// no bus, no storage, no limits, no checks beyond framing.
//
// "kaiwa bench bare --listen 127.0.0.1:PORT" runs it as its own process,
// so that its CPU and memory are measured like a UA's.
package bare
