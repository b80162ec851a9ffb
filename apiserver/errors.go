package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// statuses is the one table from error code to HTTP status. Every code in
// [kaiwa.Codes] has an entry; a test fails when one is added without.
var statuses = map[kaiwa.Code]int{
	kaiwa.CodeBadRequest:        http.StatusBadRequest,
	kaiwa.CodeUnknownOp:         http.StatusBadRequest,
	kaiwa.CodeUnauthorized:      http.StatusUnauthorized,
	kaiwa.CodeTokenExpired:      http.StatusUnauthorized,
	kaiwa.CodeForbidden:         http.StatusForbidden,
	kaiwa.CodeBanned:            http.StatusForbidden,
	kaiwa.CodeVersionNotAllowed: http.StatusForbidden,
	kaiwa.CodeMuted:             http.StatusForbidden,
	kaiwa.CodeNotFound:          http.StatusNotFound,
	kaiwa.CodeNotJoined:         http.StatusConflict,
	kaiwa.CodeConflict:          http.StatusConflict,
	kaiwa.CodeBlocked:           http.StatusForbidden,
	kaiwa.CodeTooLarge:          http.StatusRequestEntityTooLarge,
	kaiwa.CodeNGWord:            http.StatusUnprocessableEntity,
	kaiwa.CodeRateLimited:       http.StatusTooManyRequests,
	kaiwa.CodeUnavailable:       http.StatusServiceUnavailable,
	kaiwa.CodeInternal:          http.StatusInternalServerError,
	kaiwa.CodeRejected:          http.StatusUnprocessableEntity,
}

// StatusOf returns the HTTP status the tenant API answers an error of the
// given code with: 400 bad_request, 401 unauthorized, 404 not_found, and so
// on (docs/api.md has the table). An unknown code is 500.
func StatusOf(code kaiwa.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeOfStatus gives the code of an error Echo raised itself, which carries
// only an HTTP status.
func codeOfStatus(status int) kaiwa.Code {
	switch {
	case status == http.StatusNotFound:
		return kaiwa.CodeNotFound
	case status == http.StatusUnauthorized:
		return kaiwa.CodeUnauthorized
	case status == http.StatusForbidden:
		return kaiwa.CodeForbidden
	case status == http.StatusRequestEntityTooLarge:
		return kaiwa.CodeTooLarge
	case status == http.StatusTooManyRequests:
		return kaiwa.CodeRateLimited
	case status == http.StatusServiceUnavailable:
		return kaiwa.CodeUnavailable
	case status >= 400 && status < 500:
		return kaiwa.CodeBadRequest
	default:
		return kaiwa.CodeInternal
	}
}

// echoMessages are the messages of the errors Echo raises itself.
var echoMessages = map[int]string{
	http.StatusNotFound:              "no such API route",
	http.StatusMethodNotAllowed:      "method not allowed on this route",
	http.StatusRequestEntityTooLarge: "request body too large",
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    kaiwa.Code `json:"code"`
	Message string     `json:"message"`
}

// describe turns any error a handler returns into the status, code and
// message sent to the client.
func describe(err error) (status int, code kaiwa.Code, message string) {
	var ke *kaiwa.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ke):
		code, message = ke.Code, ke.Message
		if code == "" {
			code = kaiwa.CodeInternal
		}
		status = StatusOf(code)
	case errors.As(err, &he):
		status, code = he.Code, codeOfStatus(he.Code)
		if status < 400 || status > 599 {
			status = StatusOf(code)
		}
		message = echoMessages[status]
		if message == "" {
			message = http.StatusText(status)
		}
	case errors.Is(err, context.DeadlineExceeded):
		code, message = kaiwa.CodeUnavailable, "the request timed out"
		status = StatusOf(code)
	default:
		code = kaiwa.CodeInternal
		status = StatusOf(code)
	}
	if code == kaiwa.CodeInternal {
		message = "internal error"
	}
	if message == "" {
		message = string(code)
	}
	return status, code, message
}

// errorHandler writes every error as {"error":{"code","message"}}. It logs
// internal errors only, with the request's method and path; never its
// headers, which carry the API key.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		req := c.Request()
		status, code, message := describe(err)
		// When the client has gone away, what failed is a consequence of
		// that, not a fault worth logging.
		if code == kaiwa.CodeInternal && req.Context().Err() == nil {
			attrs := []any{"method", req.Method, "path", req.URL.Path, "route", c.Path(), "err", err}
			if t, ok := c.Get(tenantKey).(kaiwa.TenantID); ok {
				attrs = append(attrs, "tenant", string(t))
			}
			if id := req.Header.Get("X-Request-ID"); id != "" {
				attrs = append(attrs, "request_id", id)
			}
			logger.ErrorContext(req.Context(), "apiserver: internal error", attrs...)
		}
		if c.Response().Committed {
			return
		}
		if code == kaiwa.CodeUnauthorized || code == kaiwa.CodeTokenExpired {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="kaiwa"`)
		}
		var werr error
		if req.Method == http.MethodHead {
			werr = c.NoContent(status)
		} else {
			werr = c.JSON(status, errorBody{Error: errorDetail{Code: code, Message: message}})
		}
		if werr != nil && req.Context().Err() == nil {
			logger.WarnContext(req.Context(), "apiserver: write error response",
				"method", req.Method, "path", req.URL.Path, "err", werr)
		}
	}
}

// recoverPanics turns a panic in a handler into an internal error, so it is
// logged and answered with 500 instead of dropping the connection.
func recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		return next(c)
	}
}

// noStore keeps responses, which may carry user tokens, out of caches.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(echo.HeaderCacheControl, "no-store")
		h.Set(echo.HeaderXContentTypeOptions, "nosniff")
		return next(c)
	}
}
