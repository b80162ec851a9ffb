// Package kaiwa holds the domain of Kaiwa, a multi-tenant chat and messaging
// service for games: the names and types every part shares ([TenantID],
// [Identity], [Channel], [Message], [Event], [Settings]), the one error type
// ([Error], with a small fixed set of [Code] values), and the contracts that
// the adapters implement and the servers consume.
//
// # Layout
//
// The module root imports only the standard library. Adapters live at the
// edges and never import each other:
//
//   - tenants: MySQL storage for everything a tenant owns.
//   - bus: the NATS connection, subjects, JetStream stream and the log writer.
//   - versions: the registry of wire protocol versions and their codecs.
//   - ua: the WebSocket user-agent server.
//   - apiserver: the tenant HTTPS API (Echo).
//   - nginx: the edge configuration rendered from the versions registry.
//
// cmd/kaiwa wires them together.
//
// # The core
//
// Every rule that changes a tenant's state lives once, in a method of
// [Core] (the files core_*.go): it checks the change, stores it, publishes
// the live change the UAs apply, and records the event with the actor who
// made it. The tenant API, the kaiwa command and the directory (serving
// the UAs' moderation requests) call these methods and hold no rule of
// their own; only the UAs record events themselves, those of their
// sessions (connect, join, say's NG hits, ...). The core stays in this
// package because it needs nothing but the standard library and the
// contracts defined here: a package of its own would import this one for
// every type it touches and add nothing.
//
// # Errors
//
// Errors that cross package boundaries are [*Error] values with a [Code]. The
// tenant API maps each code to an HTTP status in one table; the WebSocket
// protocol sends the same code in its error frames. Any other error is
// internal: it is logged and reported to clients as [CodeInternal].
package kaiwa
