// Package apiserver is Kaiwa's tenant HTTPS API: the calls a tenant's game
// server makes to issue and revoke user tokens, manage channels and
// membership, push system messages (to a channel, to one user, to every
// open channel), delete messages, manage its NG-word list, kick, ban and
// mute users, read the message and event logs, and manage its API keys. It
// is built on Echo v4 and consumes only the root package: every call that
// changes something calls one method of [kaiwa.Core], where the rule
// lives, and the calls that read use the store contracts
// ([kaiwa.TenantStore], [kaiwa.ChannelStore], [kaiwa.MessageLog],
// [kaiwa.NGStore], [kaiwa.ModerationStore], [kaiwa.EventLog]); cmd/kaiwa
// wires the MySQL and NATS adapters in.
//
// # Routes
//
// [NewServer] returns a [net/http.Handler] serving one API version. Every
// route is listed once, in routes.go: the versioned calls live under
// "/{version}/api" (for example "/v1/api/tokens") and need an API key,
// except "/{version}/api/openapi.json", the API's OpenAPI 3.0 document
// (openapi.json, checked in and embedded); "/healthz" and "/readyz" sit at
// the root and need none (nginx serves them as "/{version}/api/healthz"
// and "/{version}/api/readyz"). A handler is a maker function taking only the
// dependencies it uses. docs/api.md describes every call.
//
// # Authentication and rate limit
//
// Every versioned call carries "Authorization: Bearer API_KEY". The key is
// resolved with [kaiwa.TenantStore.AuthenticateKey]; the tenant it names is
// the only tenant the call can see or change. A missing or unknown key is
// answered with 401 and the code "unauthorized".
//
// Each tenant then has a token bucket of [kaiwa.Settings.APIRate] calls
// per second and [kaiwa.Settings.APIBurst] per API process, sized from its
// settings (read again every [Config.RateRefresh]). A call over it is
// answered with 429, the code "rate_limited" and a Retry-After header in
// whole seconds; other tenants are not affected.
//
// # Errors
//
// Every error response has the body
//
//	{"error": {"code": "not_found", "message": "channel not found"}}
//
// where code is a [kaiwa.Code]. The HTTP status follows from the code
// through one table ([StatusOf]). Errors raised by Echo itself (no such
// route, method not allowed, body too large) take the same shape. Only
// internal errors are logged, with the request's method and path; their
// details never reach the client.
//
// # Live changes and events
//
// A handler decodes the request, calls one [kaiwa.Core] method with the
// actor [kaiwa.ActorAPI], and encodes the answer. The core stores the
// change, publishes the [kaiwa.Control] that live sessions apply
// (membership, channel closing and deletion, token revocation, NG list,
// message deletion, kicks, bans and mutes) and records the event, whose
// detail names the actor. A change the store had already made is
// published again, so that a retry after a failed publish reaches the
// sessions.
//
// # Request bodies
//
// Bodies are JSON objects, decoded strictly: invalid JSON, a value of the
// wrong type, trailing data after the object and invalid UTF-8 are
// "bad_request"; a body over [Config.BodyLimit] ([Config.NGBodyLimit] for
// the NG list) is "too_large". Unknown fields are ignored, so clients may
// send fields of a newer API version. Path parameters are validated with
// [kaiwa.CheckID] and [kaiwa.CheckChannel], and may be percent-encoded
// ("dm%3Aalice%3Abob").
package apiserver
