package versions

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

var codecs = []struct {
	name  string
	codec Codec
}{{"v1", V1{}}, {"v2", V2{}}}

func TestEncodeMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    kaiwa.Message
		v1, v2 string
	}{
		{
			name: "chat with data byte for byte",
			msg: kaiwa.Message{Tenant: "acme", Channel: "lobby", ID: "m81", Seq: 81, Prev: 79, From: "alice", Name: "Alice",
				Text: "hi \"bob\" <3\n", Data: json.RawMessage(`{"emote" : "wave",  "n":[1, 2.50]}`), TS: 1767225601200, CID: "c1"},
			v1: `{"op":"msg","ch":"lobby","id":"m81","from":"alice","name":"Alice","text":"hi \"bob\" <3\n","data":{"emote" : "wave",  "n":[1, 2.50]},"ts":1767225601200}`,
			v2: `{"op":"msg","ch":"lobby","id":"m81","seq":81,"prev":79,"from":"alice","name":"Alice","text":"hi \"bob\" <3\n","data":{"emote" : "wave",  "n":[1, 2.50]},"ts":1767225601200}`,
		},
		{
			name: "first system message of a channel",
			msg:  kaiwa.Message{Channel: "guild.42", ID: "m1", Seq: 1, Text: "Raid at nine", TS: 1767225600500, System: true},
			v1:   `{"op":"msg","ch":"guild.42","id":"m1","text":"Raid at nine","ts":1767225600500,"system":true}`,
			v2:   `{"op":"msg","ch":"guild.42","id":"m1","seq":1,"prev":0,"text":"Raid at nine","ts":1767225600500,"system":true}`,
		},
		{
			name: "data only, escapes",
			msg:  kaiwa.Message{Channel: "dm:a:b", ID: "x", Seq: 1 << 60, Prev: 1<<60 - 1, From: "a", Name: "Ä\u2028", Data: json.RawMessage(`{}`), TS: 1},
			v1:   `{"op":"msg","ch":"dm:a:b","id":"x","from":"a","name":"Ä\u2028","text":"","data":{},"ts":1}`,
			v2:   `{"op":"msg","ch":"dm:a:b","id":"x","seq":1152921504606846976,"prev":1152921504606846975,"from":"a","name":"Ä\u2028","text":"","data":{},"ts":1}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				codec Codec
				want  string
			}{{V1{}, tc.v1}, {V2{}, tc.v2}} {
				got := c.codec.EncodeMessage(&tc.msg)
				if string(got) != c.want {
					t.Errorf("%T.EncodeMessage =\n%s\nwant\n%s", c.codec, got, c.want)
				}
				if !json.Valid(got) {
					t.Errorf("%T.EncodeMessage is not valid JSON", c.codec)
				}
			}
		})
	}
}

func TestEncodePresence(t *testing.T) {
	p := kaiwa.Presence{Tenant: "acme", Channel: "lobby", User: "bob", Name: `Bob "the" <Builder>`, Event: "join"}
	want := `{"op":"presence","ch":"lobby","user":"bob","name":"Bob \"the\" <Builder>","event":"join"}`
	for _, c := range codecs {
		if got := c.codec.EncodePresence(&p); string(got) != want {
			t.Errorf("%s: EncodePresence = %s\nwant %s", c.name, got, want)
		}
	}
}

func TestEncodeOp(t *testing.T) {
	msg1 := json.RawMessage(`{"op":"msg","ch":"lobby","id":"m1","text":"a","data":{"k" :  1},"ts":1}`)
	msg2 := json.RawMessage(`{"op":"msg","ch":"lobby","id":"m2","text":"b","ts":2}`)
	for _, tc := range []struct {
		name string
		op   any
		want string
	}{
		{"ready", OutReady{Op: "ready", User: "alice", Name: "Alice", Channels: []string{"guild.42"}, Version: "v2", ServerTime: 1767225600000},
			`{"op":"ready","user":"alice","name":"Alice","channels":["guild.42"],"version":"v2","server_time":1767225600000}`},
		{"ready deprecated", &OutReady{Op: "ready", User: "a", Channels: []string{}, Version: "v1", Deprecated: &Deprecation{Sunset: "2027-01-31T00:00:00Z"}},
			`{"op":"ready","user":"a","name":"","channels":[],"version":"v1","server_time":0,"deprecated":{"sunset":"2027-01-31T00:00:00Z"}}`},
		{"ok of join", OutOK{Op: "ok", Ref: "1", Ch: "lobby"}, `{"op":"ok","ref":"1","ch":"lobby"}`},
		{"ok of say", OutOK{Op: "ok", Ref: "2", ID: "m81", Seq: 81}, `{"op":"ok","ref":"2","id":"m81","seq":81}`},
		{"ok of dm", OutOK{Op: "ok", Ref: "3", Ch: "dm:alice:bob", ID: "m83", Seq: 3}, `{"op":"ok","ref":"3","ch":"dm:alice:bob","id":"m83","seq":3}`},
		{"error", NewError("5", kaiwa.Errorf(kaiwa.CodeNotJoined, "join the channel first")),
			`{"op":"error","ref":"5","code":"not_joined","message":"join the channel first"}`},
		{"internal error hides details", NewError("", errors.New("mysql: password=hunter2")),
			`{"op":"error","code":"internal","message":"internal error"}`},
		{"history byte for byte", OutHistory{Op: "history", Ref: "4", Ch: "lobby", Messages: []json.RawMessage{msg1, msg2}},
			`{"op":"history","ref":"4","ch":"lobby","messages":[` + string(msg1) + `,` + string(msg2) + `]}`},
		{"empty history", &OutHistory{Op: "history", Ch: "lobby"}, `{"op":"history","ch":"lobby","messages":[]}`},
		{"closing", &OutClosing{Op: "closing", Code: 1001, Reason: "server shutting down", ReconnectAfterMS: 2300},
			`{"op":"closing","code":1001,"reason":"server shutting down","reconnect_after_ms":2300}`},
		{"pong", OutPong{Op: "pong", Ref: "p"}, `{"op":"pong","ref":"p"}`},
		{"joined", OutJoined{Op: "joined", Ch: "party.7"}, `{"op":"joined","ch":"party.7"}`},
		{"left", OutLeft{Op: "left", Ch: "party.7", Reason: "channel deleted"}, `{"op":"left","ch":"party.7","reason":"channel deleted"}`},
		{"resumed", OutResumed{Op: "resumed", Ch: "lobby", Recovered: true}, `{"op":"resumed","ch":"lobby","recovered":true}`},
		{"not recovered", OutResumed{Op: "resumed", Ch: "lobby"}, `{"op":"resumed","ch":"lobby","recovered":false}`},
		{"reconnect", OutReconnect{Op: "reconnect", AfterMS: 1234}, `{"op":"reconnect","after_ms":1234}`},

		// What cannot be encoded becomes an internal error, never a panic.
		{"history with a broken message", OutHistory{Op: "history", Ref: "h9", Ch: "x", Messages: []json.RawMessage{msg1, json.RawMessage(`{"op":`)}},
			`{"op":"error","ref":"h9","code":"internal","message":"internal error"}`},
		{"history with a message that is not an object", &OutHistory{Op: "history", Ref: "h8", Messages: []json.RawMessage{json.RawMessage(`[]`)}},
			`{"op":"error","ref":"h8","code":"internal","message":"internal error"}`},
		{"unencodable value", map[string]any{"op": "x", "f": func() {}}, `{"op":"error","code":"internal","message":"internal error"}`},
		{"not an object", "pong", `{"op":"error","code":"internal","message":"internal error"}`},
		{"nil", nil, `{"op":"error","code":"internal","message":"internal error"}`},
		{"nil pointer", (*OutOK)(nil), `{"op":"error","code":"internal","message":"internal error"}`},
		{"nil history", (*OutHistory)(nil), `{"op":"error","code":"internal","message":"internal error"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range codecs {
				got := c.codec.EncodeOp(tc.op)
				if string(got) != tc.want {
					t.Errorf("%s: EncodeOp =\n%s\nwant\n%s", c.name, got, tc.want)
				}
			}
		})
	}
}

func TestRefOf(t *testing.T) {
	for _, op := range []any{OutOK{Ref: "r"}, &OutOK{Ref: "r"}, OutError{Ref: "r"}, &OutError{Ref: "r"},
		OutHistory{Ref: "r"}, &OutHistory{Ref: "r"}, OutPong{Ref: "r"}, &OutPong{Ref: "r"}} {
		if got := refOf(op); got != "r" {
			t.Errorf("refOf(%T) = %q", op, got)
		}
	}
	if got := refOf(OutReady{User: "r"}); got != "" {
		t.Errorf("refOf(OutReady) = %q", got)
	}
}

func TestMaxBatch(t *testing.T) {
	if n := (V1{}).MaxBatch(); n != 1 {
		t.Errorf("V1 MaxBatch = %d", n)
	}
	if n := (V2{}).MaxBatch(); V2MaxBatch != 64 || n != V2MaxBatch {
		t.Errorf("V2 MaxBatch = %d", n)
	}
}

func TestAppendFrameV1(t *testing.T) {
	op := []byte(`{"op":"pong"}`)
	if got := (V1{}).AppendFrame([]byte("x"), [][]byte{op}, NewClock(time.Now())); string(got) != `x{"op":"pong"}` {
		t.Errorf("AppendFrame = %s", got)
	}
	if got := (V1{}).AppendFrame([]byte("x"), nil, nil); string(got) != "x" {
		t.Errorf("AppendFrame of no ops = %s", got)
	}
}

func TestAppendFrameV2(t *testing.T) {
	ops := [][]byte{
		V2{}.EncodeMessage(&kaiwa.Message{Channel: "lobby", ID: "m1", Seq: 5, Prev: 4, Text: "a", Data: json.RawMessage(`{"k" : [ 1 ]}`), TS: 1}),
		V2{}.EncodeOp(OutOK{Op: "ok", Ref: "2", ID: "m1", Seq: 5}),
		V2{}.EncodeOp(OutResumed{Op: "resumed", Ch: "lobby", Recovered: true}),
	}
	start := time.Now()
	clk := NewClock(start)

	// Before the peer's first frame: no e.
	frame := V2{}.AppendFrame([]byte("prefix"), ops[:1], clk)
	if !strings.HasPrefix(string(frame), "prefix") {
		t.Fatalf("AppendFrame lost dst: %s", frame)
	}
	env := parseBack(t, frame[len("prefix"):], ops[:1])
	if env.HasE || env.T > time.Since(start).Milliseconds() {
		t.Errorf("first frame: %+v, want t of at most %d and no e", env, time.Since(start).Milliseconds())
	}

	// After a peer frame: e is its t plus the time held.
	recorded := time.Now()
	clk.Record(recorded, 40000, 0, false)
	frame = V2{}.AppendFrame(nil, ops, clk)
	env = parseBack(t, frame, ops)
	if held := time.Since(recorded).Milliseconds(); !env.HasE || env.E < 40000 || env.E > 40000+held {
		t.Errorf("e = %d, %v; want 40000 plus at most %d ms", env.E, env.HasE, held)
	}

	// The exact bytes, from a stamp at a known time.
	tt, e, hasE := clk.Stamp(recorded.Add(ms(25)))
	got := appendEnvelope(nil, ops[1:], tt, e, hasE)
	want := `{"t":` + strconv.FormatInt(tt, 10) + `,"e":40025,"ops":[{"op":"ok","ref":"2","id":"m1","seq":5},{"op":"resumed","ch":"lobby","recovered":true}]}`
	if string(got) != want {
		t.Errorf("appendEnvelope =\n%s\nwant\n%s", got, want)
	}

	if got := (V2{}).AppendFrame([]byte("x"), nil, clk); string(got) != "x" {
		t.Errorf("AppendFrame of no ops = %s: a v2 frame is never empty", got)
	}
	if got := (V2{}).AppendFrame(nil, ops[1:2], nil); string(got) != `{"t":0,"ops":[{"op":"ok","ref":"2","id":"m1","seq":5}]}` {
		t.Errorf("AppendFrame with a nil clock = %s", got)
	}
}

// parseBack reads an appended frame as a peer would and checks that it
// carries ops unchanged, in order.
func parseBack(t *testing.T, frame []byte, ops [][]byte) Envelope {
	t.Helper()
	if !json.Valid(frame) {
		t.Fatalf("frame is not valid JSON: %s", frame)
	}
	env, err := ReadEnvelope(frame, V2MaxBatch)
	if err != nil {
		t.Fatalf("ReadEnvelope(%s): %v", frame, err)
	}
	if len(env.Ops) != len(ops) {
		t.Fatalf("frame carries %d ops, want %d", len(env.Ops), len(ops))
	}
	for i := range ops {
		if string(env.Ops[i]) != string(ops[i]) {
			t.Errorf("ops[%d] = %s, want %s byte for byte", i, env.Ops[i], ops[i])
		}
	}
	return env
}
