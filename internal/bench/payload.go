package bench

import (
	"errors"
	"strconv"
)

// Payload is what every benchmark message carries in its "data" object:
// {"p": publisher, "n": sequence number, "t": send time in Unix
// nanoseconds}, padded with an "x" string to the payload size asked for.
type Payload struct {
	P int
	N int
	T int64
}

// minPayload is the size of the smallest data object AppendPayload makes.
const minPayload = len(`{"p":0,"n":0,"t":0000000000000000000}`)

// AppendPayload appends the data object of p to b, padded to size bytes
// when size is larger than the object without padding.
func AppendPayload(b []byte, p Payload, size int) []byte {
	start := len(b)
	b = append(b, `{"p":`...)
	b = strconv.AppendInt(b, int64(p.P), 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(p.N), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, p.T, 10)
	// `,"x":""` is 7 bytes and the closing brace 1.
	if pad := size - (len(b) - start) - 8; pad >= 0 {
		b = append(b, `,"x":"`...)
		for range pad {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

var errPayload = errors.New("bench: not a benchmark payload")

// ParsePayload reads the p, n and t members of a data object, in any
// order and with any whitespace, without allocating. Other members may
// hold strings or numbers.
func ParsePayload(b []byte) (Payload, error) {
	var p Payload
	var have int
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return p, errPayload
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return p, errPayload
		}
		keyStart := i + 1
		i = skipString(b, i)
		if i < 0 {
			return p, errPayload
		}
		key := b[keyStart : i-1]
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return p, errPayload
		}
		i = skipSpace(b, i+1)
		if len(key) == 1 && (key[0] == 'p' || key[0] == 'n' || key[0] == 't') {
			v, j, ok := parseInt(b, i)
			if !ok {
				return p, errPayload
			}
			switch key[0] {
			case 'p':
				p.P, have = int(v), have|1
			case 'n':
				p.N, have = int(v), have|2
			case 't':
				p.T, have = v, have|4
			}
			i = j
		} else if i < len(b) && b[i] == '"' {
			if i = skipString(b, i); i < 0 {
				return p, errPayload
			}
		} else {
			_, j, ok := parseInt(b, i)
			if !ok {
				return p, errPayload
			}
			i = j
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return p, errPayload
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return p, errPayload
		}
		i++
	}
	if have != 7 {
		return p, errPayload
	}
	return p, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at b[i], or
// -1 when it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// parseInt reads a JSON integer at b[i] (a fraction or exponent is not a
// benchmark number).
func parseInt(b []byte, i int) (v int64, next int, ok bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start >= 19 {
			return 0, i, false
		}
		v = v*10 + int64(b[i]-'0')
	}
	if i == start {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}
