package kaiwa

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code shared by the WebSocket
// protocol and the tenant API. Clients switch on it; its text never changes.
type Code string

// The error codes of the wire contract. New codes may be added; none is ever
// renamed or removed.
const (
	CodeBadRequest        Code = "bad_request"
	CodeUnknownOp         Code = "unknown_op"
	CodeUnauthorized      Code = "unauthorized"
	CodeTokenExpired      Code = "token_expired"
	CodeForbidden         Code = "forbidden"
	CodeNotFound          Code = "not_found"
	CodeNotJoined         Code = "not_joined"
	CodeNGWord            Code = "ng_word"
	CodeRateLimited       Code = "rate_limited"
	CodeTooLarge          Code = "too_large"
	CodeMuted             Code = "muted"
	CodeBanned            Code = "banned"
	CodeVersionNotAllowed Code = "version_not_allowed"
	CodeUnavailable       Code = "unavailable"
	CodeInternal          Code = "internal"
	CodeConflict          Code = "conflict"
	// CodeBlocked: the recipient of a direct message has blocked its sender.
	CodeBlocked Code = "blocked"
	// CodeRejected: the tenant's before-send hook refused the message;
	// the error's message is the hook's reason.
	CodeRejected Code = "rejected"
)

// Codes lists every [Code] in a fixed order, for documentation and tests.
var Codes = []Code{
	CodeBadRequest, CodeUnknownOp, CodeUnauthorized, CodeTokenExpired,
	CodeForbidden, CodeNotFound, CodeNotJoined, CodeNGWord, CodeRateLimited,
	CodeTooLarge, CodeMuted, CodeBanned, CodeVersionNotAllowed,
	CodeUnavailable, CodeInternal, CodeConflict, CodeBlocked, CodeRejected,
}

// Error is the one error type that crosses package boundaries. Message is
// meant for the developer reading the client log; it never contains secrets.
type Error struct {
	Code    Code
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Errorf returns an [*Error] with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first [*Error] in err's chain,
// [CodeInternal] for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the first [*Error] in err's chain, or
// a generic text for internal errors, whose details are never shown to
// clients.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }
