package client

import (
	"bytes"
	"reflect"
	"strings"
	"unicode/utf8"
)

// This file reads the two shapes the reader meets on every delivery (a v2
// envelope and a "msg" op) without encoding/json: a strict JSON scanner
// (RFC 8259) that finds members and values in place. Each reader answers
// ok only when its result is the one encoding/json would give; anything
// else (escaped keys, unexpected types or members, nulls, deep nesting,
// invalid JSON) it leaves to the encoding/json path, which then accepts or
// refuses the input exactly as before.

// maxScanDepth bounds the nesting the scanner follows; deeper values are
// left to encoding/json.
const maxScanDepth = 64

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string that starts at b[i]
// (a quote), and whether it has escapes. ok is false when it is not a
// valid string.
func skipString(b []byte, i int) (next int, escaped, ok bool) {
	for i++; i < len(b); i++ {
		if plainByte[b[i]] {
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return i, escaped, false
		case c == '\\':
			escaped = true
			if i++; i >= len(b) {
				return i, escaped, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, escaped, false
				}
				i += 4
			default:
				return i, escaped, false
			}
		}
	}
	return i, escaped, false
}

// plainByte is true for the bytes that stand for themselves in a JSON
// string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber returns the index after the JSON number that starts at b[i].
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

// skipValue returns the index after the JSON value that starts at b[i]
// (no leading space), followed to at most depth levels of nesting.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		next, _, ok := skipString(b, i)
		return next, ok
	case c == '{' || c == '[':
		if depth <= 0 {
			return i, false
		}
		return skipContainer(b, i, depth-1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	default:
		return skipNumber(b, i)
	}
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipContainer returns the index after the object or array that starts
// at b[i], its values followed to depth levels.
func skipContainer(b []byte, i, depth int) (int, bool) {
	object, end := b[i] == '{', byte(']')
	if object {
		end = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == end {
		return i + 1, true
	}
	for {
		var ok bool
		if object {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, _, ok = skipString(b, i); !ok {
				return i, false
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
		if i, ok = skipValue(b, i, depth); !ok {
			return i, false
		}
		switch i = skipSpace(b, i); {
		case i >= len(b):
			return i, false
		case b[i] == end:
			return i + 1, true
		case b[i] != ',':
			return i, false
		}
		i = skipSpace(b, i+1)
	}
}

// eachMember calls fn with the key (as written between its quotes) and
// the value bytes of each member of the JSON object that is the whole of b
// (space around it allowed), in order. It reports false when b is not a
// valid object, when a key has escapes (encoding/json would unescape it
// before matching), or when fn returns false.
func eachMember(b []byte, fn func(key, val []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, escaped, ok := skipString(b, i)
		if !ok || escaped {
			return false
		}
		key := b[i+1 : end-1]
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return false
		}
		start := skipSpace(b, i+1)
		if i, ok = skipValue(b, start, maxScanDepth); !ok || !fn(key, b[start:i]) {
			return false
		}
		switch i = skipSpace(b, i); {
		case i >= len(b):
			return false
		case b[i] == '}':
			return skipSpace(b, i+1) == len(b)
		case b[i] != ',':
			return false
		}
		i = skipSpace(b, i+1)
	}
}

// foldsTo reports whether key matches one of names the way encoding/json
// matches member names to struct fields when no name matches exactly
// (case-insensitively, with Unicode simple folding).
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// plainString returns the content of the JSON string val when it has no
// escapes and is valid UTF-8, which encoding/json would return unchanged.
func plainString(val []byte) ([]byte, bool) {
	if len(val) < 2 || val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 {
		return nil, false
	}
	s := val[1 : len(val)-1]
	return s, utf8.Valid(s)
}

// parseUint reads a JSON number written with digits only that fits in a
// uint64.
func parseUint(val []byte) (uint64, bool) {
	if len(val) == 0 || len(val) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range val {
		if !isDigit(c) {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt reads a JSON integer (digits, optionally negative) that fits
// in an int64.
func parseInt(val []byte) (int64, bool) {
	neg := len(val) > 0 && val[0] == '-'
	if neg {
		val = val[1:]
	}
	u, ok := parseUint(val)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return int64(-u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// inOpNames are the member names [inOp] decodes, read from its tags so
// that a field added to it is never one the scanner lets through
// unchecked. A member that matches one of them only case-insensitively,
// or one scanMsg does not check itself, is left to encoding/json.
var inOpNames = jsonNames(reflect.TypeFor[inOp]())

// jsonNames returns the JSON member names of struct type t's fields.
func jsonNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// scannedMsg is what scanMsg reads from a "msg" op.
type scannedMsg struct {
	ch        []byte
	seq, prev uint64
	data      []byte
}

// scanMsg reads a "msg" op without a ref (a message pushed by the server)
// in place. ok is false for any other op, and for a "msg" op that the
// scanner leaves to encoding/json (see the top of this file): members of
// the wrong type, nulls, escapes in ch, unknown members that fold to a
// known name.
func scanMsg(op []byte) (m scannedMsg, ok bool) {
	var isMsg bool
	ok = eachMember(op, func(key, val []byte) bool {
		var valid bool
		switch string(key) {
		case "op":
			isMsg = string(val) == `"msg"`
			return isMsg
		case "ch":
			m.ch, valid = plainString(val)
		case "seq":
			m.seq, valid = parseUint(val)
		case "prev":
			m.prev, valid = parseUint(val)
		case "data":
			m.data, valid = val, string(val) != "null"
		case "ts":
			_, valid = parseInt(val)
		case "id", "from", "name", "text":
			valid = val[0] == '"'
		case "system":
			valid = string(val) == "true" || string(val) == "false"
		default:
			valid = !foldsTo(key, inOpNames...)
		}
		return valid
	})
	return m, ok && isMsg
}

// scannedEnvelope is what scanEnvelope reads from a v2 frame.
type scannedEnvelope struct {
	t, e int64
	hasE bool
}

// scanEnvelope reads a v2 envelope in place, appending its ops to ops.
// ok is false for any frame [versions.ReadEnvelope] would refuse, and for
// those the scanner leaves to it (see the top of this file).
func scanEnvelope(frame []byte, ops [][]byte) (env scannedEnvelope, _ [][]byte, ok bool) {
	if !utf8.Valid(frame) {
		return env, ops, false
	}
	var hasT, hasOps bool
	ok = eachMember(frame, func(key, val []byte) bool {
		switch string(key) {
		case "t":
			if hasT {
				return false
			}
			env.t, hasT = parseClock(val)
			return hasT
		case "e":
			if string(val) == "null" {
				env.e, env.hasE = 0, false
				return true
			}
			env.e, env.hasE = parseClock(val)
			return env.hasE
		case "ops":
			if hasOps {
				return false
			}
			ops, hasOps = appendOps(ops, val)
			return hasOps
		}
		return !foldsTo(key, "t", "e", "ops", "op")
	})
	return env, ops, ok && hasT && hasOps
}

// parseClock reads a v2 clock: digits only, at most 2^53−1.
func parseClock(val []byte) (int64, bool) {
	n, ok := parseUint(val)
	return int64(n), ok && n < 1<<53
}

// appendOps appends the elements of the JSON array arr (already checked
// by the scanner) to ops. ok is false unless it holds one or more objects.
func appendOps(ops [][]byte, arr []byte) (_ [][]byte, ok bool) {
	if arr[0] != '[' {
		return ops, false
	}
	n := len(ops)
	i := skipSpace(arr, 1)
	for i < len(arr) && arr[i] == '{' {
		end, _ := skipValue(arr, i, maxScanDepth)
		ops = append(ops, arr[i:end])
		i = skipSpace(arr, end)
		if arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return ops, len(ops) > n && i == len(arr)-1
}
