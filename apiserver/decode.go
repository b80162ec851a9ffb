package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// limitBody refuses request bodies over limit bytes: at once when the
// Content-Length says so, otherwise when reading passes the limit. A path
// in perPath, as the router sees it, has its own limit.
func limitBody(limit int64, perPath map[string]int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			limit := limit
			if l, ok := perPath[echo.GetPath(req)]; ok {
				limit = l
			}
			if req.ContentLength > limit {
				return kaiwa.Errorf(kaiwa.CodeTooLarge, "request body exceeds %d bytes", limit)
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
			}
			return next(c)
		}
	}
}

// bind reads the request body and decodes it into v with [decodeBody].
func bind(c echo.Context, v any) error {
	return decodeJSON(c.Request().Body, v, false)
}

// bindOptional is [bind] for calls whose body may be left out: an empty
// body leaves v as it is.
func bindOptional(c echo.Context, v any) error {
	return decodeJSON(c.Request().Body, v, true)
}

// decodeJSON reads all of r and decodes it into v with [decodeBody]. A
// reader limited by [http.MaxBytesReader] that hits its limit gives a
// [kaiwa.CodeTooLarge] error. When optional, a body of nothing but white
// space is no body and leaves v unchanged.
func decodeJSON(r io.Reader, v any, optional bool) error {
	if r == nil {
		r = http.NoBody
	}
	body, err := io.ReadAll(r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return kaiwa.Errorf(kaiwa.CodeTooLarge, "request body exceeds %d bytes", tooLarge.Limit)
		}
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "could not read the request body")
	}
	if optional && len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return nil
	}
	return decodeBody(body, v)
}

// decodeBody decodes a request body holding one JSON object into v, which
// must be a pointer to a struct. Unknown fields are ignored; anything else
// that is not exactly one well-formed object of the right field types is a
// [kaiwa.CodeBadRequest] error whose message says what is wrong and where.
func decodeBody(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "request body is empty: send a JSON object")
	}
	// encoding/json would silently replace invalid bytes with U+FFFD.
	if !utf8.Valid(body) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "request body is not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "request body must be a JSON object")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ke *kaiwa.Error
	switch {
	case errors.As(err, &ke):
		// A field type's own decoder (such as [timeValue]) said what is wrong.
		return ke
	case errors.As(err, &syntax):
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "request body must be a JSON object")
		}
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "field %q must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	default:
		return fmt.Errorf("decode request body: %w", err)
	}
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "another type"
	}
}

// pathParam returns a path parameter, percent-decoded. Echo routes on the
// raw path when the request's path has escapes its canonical form would
// not (such as "%3A" for ':'), and then hands out raw parameters; when the
// path had none, the parameter is already decoded and is not decoded twice.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	s, err := url.PathUnescape(v)
	if err != nil {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed percent-encoding in %s", name)
	}
	return s, nil
}

// channelParam returns the validated channel name of the path.
func channelParam(c echo.Context) (string, error) {
	ch, err := pathParam(c, "ch")
	if err != nil {
		return "", err
	}
	if err := kaiwa.CheckChannel(ch); err != nil {
		return "", err
	}
	return ch, nil
}

// userParam returns the validated user id of the path.
func userParam(c echo.Context) (string, error) {
	user, err := pathParam(c, "user")
	if err != nil {
		return "", err
	}
	if err := kaiwa.CheckID("user", user); err != nil {
		return "", err
	}
	return user, nil
}

// messageIDParam returns the message id of the path: opaque, but printable
// ASCII of bounded length, like the log cursors.
func messageIDParam(c echo.Context) (string, error) {
	id, err := pathParam(c, "id")
	if err != nil {
		return "", err
	}
	if id == "" || !validCursor(id) {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid message id")
	}
	return id, nil
}

// timeValue is a time in a request body (the until of a sanction, whose
// name its errors use): an RFC 3339 string or a number of milliseconds
// since the epoch. null or absent is the zero time.
type timeValue struct {
	time.Time
}

// UnmarshalJSON implements [json.Unmarshaler].
func (t *timeValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "until must be an RFC 3339 string or milliseconds since the epoch")
		}
	} else {
		s = string(b)
	}
	v, err := parseTime(s)
	if err != nil {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "until must be an RFC 3339 time such as 2025-01-02T15:04:05Z or milliseconds since the epoch")
	}
	t.Time = v
	return nil
}
