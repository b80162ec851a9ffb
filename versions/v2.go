package versions

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/jsonw"
)

// V2 is v1 plus sequence numbers, acknowledged sends, resume, batching and
// clocks. Every frame, either way, is an envelope
//
//	{"t":T,"e":E,"ops":[op,...]}
//
// carrying 1 to [V2MaxBatch] ops of the v1 form. T is the sender's
// [Clock], E its echo of the peer's clock ("e" is absent until the sender
// has received a frame). A "msg" op carries "seq" and "prev".
type V2 struct{}

var _ Codec = V2{}

// V2MaxBatch is the most ops a v2 frame carries, either way.
const V2MaxBatch = 64

// Envelope is a v2 frame as read by [ReadEnvelope]: the sender's clock T,
// its echo E of the receiver's clock when HasE, and the ops, each a JSON
// object (not yet decoded).
type Envelope struct {
	T    int64
	E    int64
	HasE bool
	Ops  []json.RawMessage
}

// wireEnvelope is an envelope as it appears on the wire. Op is read only
// to tell a bare op from an envelope.
type wireEnvelope struct {
	T   json.RawMessage   `json:"t"`
	E   json.RawMessage   `json:"e"`
	Ops []json.RawMessage `json:"ops"`
	Op  json.RawMessage   `json:"op"`
}

// ReadEnvelope parses a v2 frame sent either way: a JSON object in UTF-8
// with "t" (required) and "e" (optional; null counts as absent), integers
// from 0 to [MaxClock], and "ops", an array of 1 to maxOps JSON objects.
// Unknown members are ignored. Any fault is a [*kaiwa.Error] with
// [kaiwa.CodeBadRequest]. The ops are not decoded.
func ReadEnvelope(frame []byte, maxOps int) (Envelope, error) {
	env, _, err := readEnvelope(frame, maxOps)
	return env, err
}

// readEnvelope is [ReadEnvelope], and the ref of a bare op sent instead of
// an envelope, for the error reply.
func readEnvelope(frame []byte, maxOps int) (Envelope, string, error) {
	if err := checkFrame(frame); err != nil {
		return Envelope{}, "", err
	}
	var w wireEnvelope
	if err := json.Unmarshal(frame, &w); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field == "ops" {
			return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "ops must be an array of op objects")
		}
		return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "malformed frame: %s", jsonErrText(err))
	}
	if w.Ops == nil {
		if len(w.Op) > 0 {
			return Envelope{}, bareRef(frame), kaiwa.Errorf(kaiwa.CodeBadRequest,
				`v2 frames are envelopes {"t":N,"e":N,"ops":[op,...]}, not bare ops`)
		}
		return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "ops is required")
	}
	var env Envelope
	var err error
	if isNull(w.T) {
		return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "t is required")
	}
	if env.T, err = parseClock("t", w.T); err != nil {
		return Envelope{}, "", err
	}
	if !isNull(w.E) {
		if env.E, err = parseClock("e", w.E); err != nil {
			return Envelope{}, "", err
		}
		env.HasE = true
	}
	switch {
	case len(w.Ops) == 0:
		return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "ops must not be empty")
	case len(w.Ops) > maxOps:
		return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "a frame carries at most %d ops, this one has %d", maxOps, len(w.Ops))
	}
	for i, op := range w.Ops {
		if len(op) == 0 || op[0] != '{' {
			return Envelope{}, "", kaiwa.Errorf(kaiwa.CodeBadRequest, "ops[%d] is not a JSON object", i)
		}
	}
	env.Ops = w.Ops
	return env, "", nil
}

// isNull reports whether a member is absent or null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// parseClock reads "t" or "e": a JSON integer from 0 to MaxClock, written
// with digits only (no sign, fraction or exponent).
func parseClock(name string, raw json.RawMessage) (int64, error) {
	fail := kaiwa.Errorf(kaiwa.CodeBadRequest, "%s must be an integer from 0 to %d", name, int64(MaxClock))
	if len(raw) == 0 || len(raw) > 16 {
		return 0, fail
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, fail
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n > MaxClock {
		return 0, fail
	}
	return n, nil
}

// bareRef returns the ref of a bare op when it is a string of at most
// MaxRefLen characters.
func bareRef(frame []byte) string {
	var r struct {
		Ref string `json:"ref"`
	}
	if json.Unmarshal(frame, &r) != nil || len(r.Ref) > kaiwa.MaxRefLen {
		return ""
	}
	return r.Ref
}

// DecodeFrame implements [Codec]. The frame is decoded whole or not at all:
// when any op is malformed no command is appended, and the error names the
// op's index in a frame of several ops; ref is then that op's ref. A frame
// with one op returns that op's ref, as in v1. The frame's clocks are
// recorded in clk (when not nil) once the envelope is valid, even if an op
// is not.
func (V2) DecodeFrame(dst []Command, frame []byte, clk *Clock) ([]Command, string, error) {
	return decodeV2(dst, frame, clk, time.Now())
}

// decodeV2 is DecodeFrame for a frame that arrived at now.
func decodeV2(dst []Command, frame []byte, clk *Clock, now time.Time) ([]Command, string, error) {
	env, ref, err := readEnvelope(frame, V2MaxBatch)
	if err != nil {
		return dst, ref, err
	}
	if clk != nil {
		clk.Record(now, env.T, env.E, env.HasE)
	}
	n := len(dst)
	for i, raw := range env.Ops {
		c, ref, err := decodeOp(raw)
		if err != nil {
			if len(env.Ops) > 1 {
				err = kaiwa.Errorf(kaiwa.CodeBadRequest, "ops[%d]: %s", i, kaiwa.ErrorMessage(err))
			}
			return dst[:n], ref, err
		}
		dst = append(dst, c)
	}
	if len(env.Ops) == 1 {
		ref = dst[n].Ref
	}
	return dst, ref, nil
}

// EncodeMessage implements [Codec]: the "msg" op with "seq" and "prev".
func (V2) EncodeMessage(m *kaiwa.Message) []byte {
	if m.Kind != "" {
		return appendChange(make([]byte, 0, 48+msgSize(m)), m, true)
	}
	return appendMsg(make([]byte, 0, 48+msgSize(m)), m, true)
}

// EncodePresence implements [Codec].
func (V2) EncodePresence(p *kaiwa.Presence) []byte { return encodePresence(p) }

// EncodeOp implements [Codec]. It never fails: a value that does not
// encode to a JSON object becomes an "internal" error op carrying the
// value's ref (the Out* types with a Ref field), so a request still gets
// its one reply. History replies keep their messages byte for byte.
func (V2) EncodeOp(op any) []byte { return encodeOp(op) }

// MaxBatch implements [Codec]: [V2MaxBatch].
func (V2) MaxBatch() int { return V2MaxBatch }

// AppendFrame implements [Codec]: it appends {"t":T,"e":E,"ops":[...]}
// with the ops' bytes unchanged, stamped by clk at the current time ("e"
// absent before the peer's first frame; a nil clk stamps t 0 and no e).
// Every op given is written; callers keep to MaxBatch. No ops appends
// nothing: a v2 frame is never empty.
func (V2) AppendFrame(dst []byte, ops [][]byte, clk *Clock) []byte {
	if len(ops) == 0 {
		return dst
	}
	var (
		t, e int64
		hasE bool
	)
	if clk != nil {
		t, e, hasE = clk.Stamp(time.Now())
	}
	return appendEnvelope(dst, ops, t, e, hasE)
}

// appendEnvelope appends an envelope with the given clocks.
func appendEnvelope(dst []byte, ops [][]byte, t, e int64, hasE bool) []byte {
	n := 48
	for _, op := range ops {
		n += len(op) + 1
	}
	dst = slices.Grow(dst, n)
	dst = jsonw.Int(append(dst, `{"t":`...), t)
	if hasE {
		dst = jsonw.Int(append(dst, `,"e":`...), e)
	}
	dst = append(dst, `,"ops":[`...)
	for i, op := range ops {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, op...)
	}
	return append(dst, ']', '}')
}
