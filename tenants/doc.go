// Package tenants keeps everything a Kaiwa tenant owns in MySQL: the tenant
// and its settings, API keys and user tokens (hashed), channels and their
// persistent membership, NG-word lists, bans and mutes, and the message and
// event logs.
//
// [Store] implements the root package's storage contracts
// ([kaiwa.TenantStore], [kaiwa.TokenStore], [kaiwa.ChannelStore],
// [kaiwa.MessageLog], [kaiwa.EventLog], [kaiwa.NGStore],
// [kaiwa.ModerationStore] and [kaiwa.Directory]). [Cache] sits in front of
// any [kaiwa.Directory] in the API tier, which answers the UAs' lookups, so
// that a burst of connections costs a handful of queries. [Migrate] applies
// the schema in package migrations.
//
// # The message log
//
// The log is read in time order: by ts, then by the stream's sequence
// number, then by arrival. Every query (a channel, a user, a time range,
// or all of a tenant's channels, inboxes included) is one index range scan
// in that order, and its keyset cursor is a message id. A deleted message
// stays as a tombstone, so that the log writer cannot bring it back.
//
// # Retention
//
// [Store.Purge], run periodically by the API tier, deletes each tenant's
// messages and events older than its RetentionDays, and user tokens and
// sanctions that have ended, in small batches.
//
// # Tenancy
//
// Every query names the tenant. Credentials ("TENANT:SECRET") are looked up
// by tenant and hash together, so a key or token can never reach another
// tenant's rows even by a hash collision, and the same user or channel name
// in two tenants stays two separate things. Names are case-sensitive: the
// schema compares them with binary collations.
//
// # Errors
//
// Methods return [*kaiwa.Error] values for everything a caller can act on:
// [kaiwa.CodeBadRequest] for invalid input, [kaiwa.CodeNotFound],
// [kaiwa.CodeConflict], [kaiwa.CodeUnauthorized], [kaiwa.CodeTokenExpired],
// and [kaiwa.CodeUnavailable] when the database cannot be reached (the cause
// stays in the chain for logs). Any other error is internal.
//
// # Times
//
// Record times (created_at, expires_at, ...) are stored as UTC with
// millisecond precision, so a time returned by a method compares equal to
// the one read back later. Message and event times are milliseconds since
// the epoch, as on the wire.
package tenants
