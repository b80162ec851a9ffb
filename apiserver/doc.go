// Package apiserver is Kaiwa's tenant HTTPS API: the calls a tenant's game
// server makes to issue user tokens, manage channels and membership, push
// system messages and read the message log. It is built on Echo v4 and
// consumes only the contracts of the root package ([kaiwa.TenantStore],
// [kaiwa.TokenStore], [kaiwa.ChannelStore], [kaiwa.MessageLog],
// [kaiwa.Publisher]); cmd/kaiwa wires the MySQL and NATS adapters in.
//
// # Routes
//
// [NewServer] returns a [net/http.Handler] serving one API version. Every
// route is listed once, in routes.go: the versioned calls live under
// "/{version}/api" (for example "/v1/api/tokens") and need an API key;
// "/healthz" and "/readyz" sit at the root and need none. A handler is a
// maker function taking only the dependencies it uses.
//
// # Authentication
//
// Every versioned call carries "Authorization: Bearer API_KEY". The key is
// resolved with [kaiwa.TenantStore.AuthenticateKey]; the tenant it names is
// the only tenant the call can see or change. A missing or unknown key is
// answered with 401 and the code "unauthorized".
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
// # Request bodies
//
// Bodies are JSON objects, decoded strictly: invalid JSON, a value of the
// wrong type, trailing data after the object and invalid UTF-8 are
// "bad_request"; a body over [Config.BodyLimit] is "too_large". Unknown
// fields are ignored, so clients may send fields of a newer API version.
// Path parameters are validated with [kaiwa.CheckID] and
// [kaiwa.CheckChannel], and may be percent-encoded ("dm%3Aalice%3Abob").
package apiserver
