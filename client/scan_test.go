package client

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/kaiwa-chat/kaiwa/versions"
)

// msgOps are "msg" ops for the scanner's tests and fuzz seeds; fast says
// whether scanMsg reads them in place (the others are left to
// encoding/json, or are no pushed message at all).
var msgOps = []struct {
	op   string
	fast bool
}{
	// As the servers encode them (versions.appendMsg).
	{`{"op":"msg","ch":"world","id":"01J","seq":42,"prev":41,"from":"u1","name":"U1","text":"hi","data":{"p":3,"n":7,"t":1732218000123456789,"x":"xx"},"ts":1732218000123}`, true},
	{`{"op":"msg","ch":"world","id":"01J","from":"u1","name":"U1","text":"hi","ts":1}`, true},
	{`{"op":"msg","ch":"news","id":"m","text":"Raid at nine","ts":1,"system":true}`, true},
	{`{"op":"msg","ch":"dm:u1:u2","id":"m","text":"\"quoted\" \\ \u00e9","data":{"s":"}\"{","a":[1,-2.5e3,true,false,null,{}],"o":{"k":[]}},"ts":-1}`, true},
	{` { "op" : "msg" , "ch" : "c" , "ts" : 0 } `, true},
	{`{"ch":"c","op":"msg"}`, true},
	{`{"op":"msg","ch":"c","data":"text","ts":1}`, true},
	{`{"op":"msg","ch":"c","extension":{"any":["thing"]},"ts":1}`, true},
	{`{"op":"msg","ch":"c","seq":18446744073709551615}`, true},
	{`{"op":"msg","ch":"é","ts":1}`, true},
	{`{"op":"msg"}`, true},

	// Left to encoding/json.
	{`{"op":"msg","ch":"a\u0062c","ts":1}`, false},                  // escaped ch
	{`{"op":"msg","ch":"c\nd"}`, false},                             // control character: invalid
	{`{"op":"msg","CH":"c"}`, false},                                // folds to ch
	{`{"op":"msg","\u0063h":"c"}`, false},                           // escaped key
	{`{"op":"msg","ch":"c","ref":"r1"}`, false},                     // replies go by ref
	{`{"op":"msg","ch":"c","data":null}`, false},                    // null
	{`{"op":"msg","ch":null}`, false},                               // null
	{`{"op":"msg","ch":"c","seq":-1}`, false},                       // wrong type
	{`{"op":"msg","ch":"c","seq":1.0}`, false},                      // wrong type
	{`{"op":"msg","ch":"c","seq":18446744073709551616}`, false},     // overflow
	{`{"op":"msg","ch":"c","ts":9223372036854775808}`, false},       // overflow
	{`{"op":"msg","ch":"c","ts":"1"}`, false},                       // wrong type
	{`{"op":"msg","ch":"c","system":1}`, false},                     // wrong type
	{`{"op":"msg","ch":"c","text":5}`, false},                       // wrong type
	{`{"op":"msg","ch":"c","user":"u"}`, false},                     // another op's member
	{`{"op":"msg","op":"presence","ch":"c"}`, false},                // duplicate op
	{"{\"op\":\"msg\",\"ch\":\"\xff\"}", false},                     // invalid UTF-8 in ch
	{`{"op":"msg","ch":"c",}`, false},                               // invalid JSON
	{`{"op":"msg","ch":"c"}x`, false},                               // trailing bytes
	{`{"op":"msg","ch":"c","data":{"a":01}}`, false},                // invalid number
	{`{"op":"msg","ch":"c","data":{"a":tru}}`, false},               // invalid literal
	{`{"op":"msg","ch":"c","data":{"a":"\x"}}`, false},              // invalid escape
	{`{"op":"msg","ch":"c","data":` + deep(100) + `}`, false},       // deeper than the scanner goes
	{`{"op":"presence","ch":"c","user":"u","event":"join"}`, false}, // not a message
	{`{"op":"ok","ref":"c1","id":"m"}`, false},
	{`{"ch":"c"}`, false},
	{`[]`, false},
	{``, false},
}

// deep returns n nested arrays.
func deep(n int) string {
	return string(bytes.Repeat([]byte{'['}, n)) + string(bytes.Repeat([]byte{']'}, n))
}

func TestScanMsg(t *testing.T) {
	for _, tc := range msgOps {
		_, ok := scanMsg([]byte(tc.op))
		if ok != tc.fast {
			t.Errorf("scanMsg(%s) ok = %v, want %v", tc.op, ok, tc.fast)
		}
		checkScanMsg(t, []byte(tc.op))
	}
}

// FuzzScanMsg checks scanMsg against encoding/json: whatever it reads in
// place, decodeOp reads the same.
func FuzzScanMsg(f *testing.F) {
	for _, tc := range msgOps {
		f.Add([]byte(tc.op))
	}
	f.Fuzz(func(t *testing.T, op []byte) { checkScanMsg(t, op) })
}

func checkScanMsg(t *testing.T, op []byte) {
	t.Helper()
	m, ok := scanMsg(op)
	if !ok {
		return
	}
	in, err := decodeOp(op)
	switch {
	case err != nil:
		t.Fatalf("scanMsg read %q, which encoding/json refuses: %v", op, err)
	case in.Op != "msg" || in.Ref != "":
		t.Fatalf("scanMsg read %q, which encoding/json reads as op %q ref %q", op, in.Op, in.Ref)
	case string(m.ch) != in.Ch || m.seq != in.Seq || m.prev != in.Prev:
		t.Fatalf("scanMsg(%q) = ch %q seq %d prev %d, encoding/json %q %d %d", op, m.ch, m.seq, m.prev, in.Ch, in.Seq, in.Prev)
	case !bytes.Equal(m.data, in.Data) || (m.data == nil) != (in.Data == nil):
		t.Fatalf("scanMsg(%q) data = %q, encoding/json %q", op, m.data, in.Data)
	}
}

// envelopes are v2 frames for the scanner's tests and fuzz seeds, with
// whether scanEnvelope reads them in place.
var envelopes = []struct {
	frame string
	fast  bool
}{
	{`{"t":5,"ops":[{"op":"ready"}]}`, true},
	{`{"t":9007199254740991,"e":0,"ops":[{"op":"msg","ch":"c","data":{"a":[1]}},{"op":"presence"} , {}]}`, true},
	{` { "ops" : [ {"op":"x"} ] , "e" : null , "t" : 0 , "other" : [1,{"t":2}] } `, true},
	{`{"t":1,"e":2,"e":3,"ops":[{}]}`, true},

	{`{"t":9007199254740992,"ops":[{}]}`, false}, // above MaxClock
	{`{"t":-1,"ops":[{}]}`, false},
	{`{"t":1.5,"ops":[{}]}`, false},
	{`{"t":"1","ops":[{}]}`, false},
	{`{"t":null,"ops":[{}]}`, false},
	{`{"ops":[{}]}`, false},
	{`{"t":1,"t":2,"ops":[{}]}`, false},
	{`{"t":1,"ops":[]}`, false},
	{`{"t":1,"ops":null}`, false},
	{`{"t":1,"ops":[{}],"ops":[{}]}`, false},
	{`{"t":1,"ops":[1]}`, false},
	{`{"t":1,"ops":[{},"x"]}`, false},
	{`{"t":1,"ops":{}}`, false},
	{`{"T":1,"ops":[{}]}`, false},
	{`{"t":1,"OPS":[{}]}`, false},
	{`{"t":1,"op":"say","ops":[{}]}`, false},
	{`{"t":1,"ops":[{}]}]`, false},
	{"{\"t\":1,\"ops\":[{\"a\":\"\xff\"}]}", false}, // invalid UTF-8
	{`{"t":1,"ops":[{"a":"\x"}]}`, false},           // invalid escape
	{`{"op":"ok"}`, false},
	{`[{"t":1}]`, false},
	{``, false},
}

func TestScanEnvelope(t *testing.T) {
	for _, tc := range envelopes {
		_, _, ok := scanEnvelope([]byte(tc.frame), nil)
		if ok != tc.fast {
			t.Errorf("scanEnvelope(%s) ok = %v, want %v", tc.frame, ok, tc.fast)
		}
		checkScanEnvelope(t, []byte(tc.frame))
	}
	// Up to 64 ops, as the server batches them.
	ops := slices.Repeat([]string{msgOps[0].op}, versions.V2MaxBatch)
	frame := []byte(`{"t":1,"e":2,"ops":[` + joinOps(ops) + `]}`)
	env, got, ok := scanEnvelope(frame, nil)
	if !ok || env.t != 1 || env.e != 2 || !env.hasE || len(got) != len(ops) {
		t.Fatalf("scanEnvelope of %d ops = %+v, %d ops, %v", len(ops), env, len(got), ok)
	}
	checkScanEnvelope(t, frame)
}

func joinOps(ops []string) string {
	var b bytes.Buffer
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(op)
	}
	return b.String()
}

// FuzzScanEnvelope checks scanEnvelope against [versions.ReadEnvelope]:
// whatever it reads in place, ReadEnvelope reads the same.
func FuzzScanEnvelope(f *testing.F) {
	for _, tc := range envelopes {
		f.Add([]byte(tc.frame))
	}
	f.Fuzz(func(t *testing.T, frame []byte) { checkScanEnvelope(t, frame) })
}

func checkScanEnvelope(t *testing.T, frame []byte) {
	t.Helper()
	env, ops, ok := scanEnvelope(frame, nil)
	if !ok {
		return
	}
	want, err := versions.ReadEnvelope(frame, math.MaxInt)
	if err != nil {
		t.Fatalf("scanEnvelope read %q, which ReadEnvelope refuses: %v", frame, err)
	}
	if env.t != want.T || env.e != want.E || env.hasE != want.HasE {
		t.Fatalf("scanEnvelope(%q) = %+v, ReadEnvelope %+v", frame, env, want)
	}
	if !slices.EqualFunc(ops, want.Ops, func(a []byte, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Fatalf("scanEnvelope(%q) ops = %q, ReadEnvelope %q", frame, ops, want.Ops)
	}
}
