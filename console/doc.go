// Package console is the web console a tenant's operators use: served by
// the API process under /console/ (nginx routes it there like the API),
// server-rendered HTML with its stylesheet embedded in the binary, in
// English and Japanese.
//
// # Pages
//
//   - Live: the tenant's sessions now, messages a second, round-trip times,
//     NG hits and the log writer's lag (the tenant API's stats, gathered
//     from every process), and the busiest channels of the last five
//     minutes; it refreshes itself every five seconds.
//   - Logs: messages and events filtered by channel, user, event type and
//     time range, a page at a time, messages newest or oldest first; a
//     user opens the user's page, and a message can be deleted.
//   - User: the user's recent messages and events, the sanctions in force,
//     and kick, mute, ban, unmute and unban with a reason.
//   - NG words: the list, the allow-list and the policy; adding and
//     removing entries; and a "try a sentence" box that shows the sentence
//     as the matcher folds it, what would be rejected or masked, and which
//     entries matched.
//   - Channels: every channel with its kind and member count; creating
//     and deleting channels.
//
// Every change is a method of [kaiwa.Core] called with the actor
// "console:" and the id of the API key the operator logged in with, so
// the event log says who did it, and it applies live like the API's.
//
// # Authentication
//
// An operator logs in with one of the tenant's API keys (the ones `kaiwa
// tenant rotate-key` makes; a key for the console alone is just another
// key, revoked when no longer needed). The key is checked once, never
// stored or logged; the console then keeps a session cookie naming the
// tenant, the key's id and an expiry, signed with HMAC-SHA256 under the
// console's secret. Every request checks the signature, the expiry, and
// that the key is still active and its tenant enabled, so revoking the key
// ends its sessions. Everything a page shows or changes is the cookie's
// tenant's: no parameter names a tenant, so a cookie can reach nothing of
// another tenant, and another tenant's cookie cannot be altered to without
// the secret. The cookie is HttpOnly, SameSite=Strict, limited to
// /console/, and Secure behind TLS.
//
// # CSRF
//
// Every form that changes something carries a token derived from the
// session (an HMAC of the cookie under the secret), checked in constant
// time; a request whose Origin header names another host is refused too.
// The login form is protected the same way with a random token in a
// short-lived cookie of its own (double submit).
package console
