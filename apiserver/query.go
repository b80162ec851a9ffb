package apiserver

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// maxCursorLen bounds the message and event ids given as cursors.
const maxCursorLen = 128

// maxEventTypeLen bounds an event type in a query.
const maxEventTypeLen = 64

// pageLimits are the default and largest page sizes of log queries.
type pageLimits struct {
	Default, Max int
}

// limitParam returns the page size of a log query.
func limitParam(v url.Values, limits pageLimits) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return limits.Default, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > limits.Max {
		return 0, kaiwa.Errorf(kaiwa.CodeBadRequest, "limit must be an integer from 1 to %d", limits.Max)
	}
	return n, nil
}

// timeRange returns the since and until parameters of a log query.
func timeRange(v url.Values) (since, until time.Time, err error) {
	if since, err = timeParam(v, "since"); err != nil {
		return since, until, err
	}
	if until, err = timeParam(v, "until"); err != nil {
		return since, until, err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return since, until, kaiwa.Errorf(kaiwa.CodeBadRequest, "until is before since")
	}
	return since, until, nil
}

// userQuery returns the optional user parameter, validated.
func userQuery(v url.Values) (string, error) {
	user := v.Get("user")
	if user != "" {
		if err := kaiwa.CheckID("user", user); err != nil {
			return "", err
		}
	}
	return user, nil
}

// parseMessageQuery reads the query parameters of a message log query:
// limit, before, after, since, until, user and order. The channel is left
// empty.
func parseMessageQuery(v url.Values, limits pageLimits) (kaiwa.MessageQuery, error) {
	var q kaiwa.MessageQuery
	var err error
	if q.Limit, err = limitParam(v, limits); err != nil {
		return q, err
	}
	if q.Before, err = cursorParam(v, "before"); err != nil {
		return q, err
	}
	if q.After, err = cursorParam(v, "after"); err != nil {
		return q, err
	}
	if q.Since, q.Until, err = timeRange(v); err != nil {
		return q, err
	}
	if q.User, err = userQuery(v); err != nil {
		return q, err
	}
	switch order := v.Get("order"); order {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, kaiwa.Errorf(kaiwa.CodeBadRequest, `order must be "asc" or "desc"`)
	}
	return q, nil
}

// parseEventQuery reads the query parameters of an event log query: type,
// user, ch, since, until, limit and before.
func parseEventQuery(v url.Values, limits pageLimits) (kaiwa.EventQuery, error) {
	var q kaiwa.EventQuery
	var err error
	if q.Limit, err = limitParam(v, limits); err != nil {
		return q, err
	}
	if q.Before, err = cursorParam(v, "before"); err != nil {
		return q, err
	}
	if q.Since, q.Until, err = timeRange(v); err != nil {
		return q, err
	}
	if q.User, err = userQuery(v); err != nil {
		return q, err
	}
	if q.Type = v.Get("type"); q.Type != "" && !validEventType(q.Type) {
		return q, kaiwa.Errorf(kaiwa.CodeBadRequest, "type must be an event type such as %q", kaiwa.EventKick)
	}
	if q.Channel = v.Get("ch"); q.Channel != "" {
		if err := kaiwa.CheckChannel(q.Channel); err != nil {
			return q, err
		}
	}
	return q, nil
}

// validEventType reports whether s can be an event type: lower-case
// letters, digits and '_'.
func validEventType(s string) bool {
	if len(s) > maxEventTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// cursorParam returns a message or event id parameter.
func cursorParam(v url.Values, name string) (string, error) {
	s := v.Get(name)
	if !validCursor(s) {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "%s is not a valid cursor", name)
	}
	return s, nil
}

// validCursor reports whether s can be a message or event id: opaque, but
// printable ASCII of bounded length. The empty string is no cursor.
func validCursor(s string) bool {
	if len(s) > maxCursorLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// timeParam returns a time parameter given as milliseconds since the epoch
// or as an RFC 3339 time; the zero time when absent. A '+' of a time zone
// offset that arrived unescaped (and so decoded as a space) is restored.
func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseTime(strings.ReplaceAll(s, " ", "+"))
	if errors.Is(err, errTimeRange) {
		return time.Time{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s is out of range", name)
	}
	if err != nil {
		return time.Time{}, kaiwa.Errorf(kaiwa.CodeBadRequest,
			"%s must be milliseconds since the epoch or an RFC 3339 time such as 2025-01-02T15:04:05Z", name)
	}
	return t, nil
}

// errTimeRange is the error of [parseTime] for a time outside the years
// 1970 to 9999.
var errTimeRange = errors.New("apiserver: time out of range")

// parseTime parses milliseconds since the epoch or an RFC 3339 time. Both
// must fall in the years 1970 to 9999.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms >= maxEpochMillis {
			return time.Time{}, errTimeRange
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, errTimeRange
	}
	return t, nil
}

// maxEpochMillis is the start of the year 10000, past which RFC 3339 cannot
// write a time.
const maxEpochMillis = 253402300800000
