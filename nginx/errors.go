package nginx

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// edgeError is an error nginx answers by itself, without a backend, in the
// tenant API's error shape. The template renders an error_page directive
// and a location for each.
type edgeError struct {
	// Name names the location that answers.
	Name string
	// Catches are the statuses nginx would otherwise answer with its own
	// HTML page.
	Catches []int
	// Status, Code and Message are the answer.
	Status  int
	Code    string
	Message string
	// RetryAfter, when not zero, is sent as the Retry-After header.
	RetryAfter int
	// Early is set for errors nginx may raise before it has read the
	// request's URI. nginx cannot hand a request without a URI to a named
	// location, so these go to an internal URI instead (which the access
	// log then shows as the request's uri).
	Early bool
}

// errorPrefix is where the internal locations of early errors live. A
// version name cannot contain a dot, so no route shares it.
const errorPrefix = "/.kaiwa/error/"

// Target is what error_page hands the request to.
func (e edgeError) Target() string {
	if e.Early {
		return errorPrefix + e.Name
	}
	return "@" + e.Name
}

// Location is the location block's match.
func (e edgeError) Location() string {
	if e.Early {
		return "= " + e.Target()
	}
	return e.Target()
}

// CatchList is Catches as error_page lists them.
func (e edgeError) CatchList() string {
	s := make([]string, len(e.Catches))
	for i, c := range e.Catches {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " ")
}

// edgeErrors lists every error nginx answers by itself; maxBody is the
// request body limit the too_large message names.
func edgeErrors(maxBody int64) []edgeError {
	return []edgeError{
		{Name: "bad_request", Catches: []int{400, 501, 505}, Status: 400, Code: "bad_request", Message: "malformed or unsupported HTTP request", Early: true},
		{Name: "uri_too_long", Catches: []int{414}, Status: 414, Code: "too_large", Message: "request URI too long", Early: true},
		{Name: "internal", Catches: []int{500}, Status: 500, Code: "internal", Message: "internal error", Early: true},
		{Name: "headers_too_large", Catches: []int{494}, Status: 431, Code: "too_large", Message: "request headers too large"},
		{Name: "not_found", Catches: []int{404}, Status: 404, Code: "not_found", Message: "no such endpoint"},
		{Name: "too_large", Catches: []int{413}, Status: 413, Code: "too_large", Message: fmt.Sprintf("request body over %d bytes", maxBody)},
		{Name: "rate_limited", Catches: []int{429}, Status: 429, Code: "rate_limited", Message: "too many requests, retry later", RetryAfter: 1},
		{Name: "unavailable", Catches: []int{502, 503, 504}, Status: 503, Code: "unavailable", Message: "service unavailable, retry later"},
	}
}

// errorBody writes the JSON error body {"error":{"code":..,"message":..}}
// as a single-quoted nginx string, newline included, for return.
func errorBody(code, message string) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]map[string]string{"error": {"code": code, "message": message}}); err != nil {
		return "", err
	}
	body := strings.TrimSuffix(b.String(), "\n")
	if strings.ContainsAny(body, `'\$`) {
		return "", fmt.Errorf("nginx: error message %q cannot be written into the configuration", message)
	}
	return "'" + body + `\n'`, nil
}
