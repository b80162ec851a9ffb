package versions

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// decodeCase is one frame and what decoding it must give: the commands, or
// an error (always bad_request) whose message contains errPart.
type decodeCase struct {
	name    string
	frame   string
	want    []Command
	ref     string
	errPart string
}

// opCases are the ops every version shares, as the bare op (v1) and the
// commands they decode to.
var opCases = []decodeCase{
	{name: "auth", frame: `{"op":"auth","token":"acme:secret","ref":"a1"}`,
		want: []Command{{Op: OpAuth, Token: "acme:secret", Ref: "a1"}}, ref: "a1"},
	{name: "auth with resume", frame: `{"op":"auth","token":"acme:s","resume":{"lobby":41,"dm:a:b":7}}`,
		want: []Command{{Op: OpAuth, Token: "acme:s", Resume: map[string]uint64{"lobby": 41, "dm:a:b": 7}}}},
	{name: "join", frame: `{"op":"join","ref":"1","ch":"guild.42"}`,
		want: []Command{{Op: OpJoin, Ref: "1", Ch: "guild.42"}}, ref: "1"},
	{name: "leave", frame: `{"ch":"guild.42","op":"leave"}`,
		want: []Command{{Op: OpLeave, Ch: "guild.42"}}},
	{name: "say with data byte for byte", frame: `{"op":"say","ref":"2","ch":"lobby","text":"hi \u00e9","data": {"emote" : "wave", "n":[1, 2.50]} ,"cid":"c-1"}`,
		want: []Command{{Op: OpSay, Ref: "2", Ch: "lobby", Text: "hi é", Data: json.RawMessage(`{"emote" : "wave", "n":[1, 2.50]}`), CID: "c-1"}}, ref: "2"},
	{name: "say with null data", frame: `{"op":"say","ch":"lobby","text":"x","data":null}`,
		want: []Command{{Op: OpSay, Ch: "lobby", Text: "x"}}},
	{name: "dm", frame: `{"op":"dm","to":"bob","text":"psst","cid":"` + strings.Repeat("c", 64) + `"}`,
		want: []Command{{Op: OpDM, To: "bob", Text: "psst", CID: strings.Repeat("c", 64)}}},
	{name: "history", frame: `{"op":"history","ch":"lobby","limit":20,"before":"m9"}`,
		want: []Command{{Op: OpHistory, Ch: "lobby", Limit: 20, Before: "m9"}}},
	{name: "ping", frame: " \r\n\t{\"op\":\"ping\"}\n",
		want: []Command{{Op: OpPing}}},
	{name: "unknown op passes to the server", frame: `{"op":"shout","ref":"9","loud":true}`,
		want: []Command{{Op: "shout", Ref: "9"}}, ref: "9"},
	{name: "ref of 64 characters", frame: `{"op":"ping","ref":"` + strings.Repeat("r", 64) + `"}`,
		want: []Command{{Op: OpPing, Ref: strings.Repeat("r", 64)}}, ref: strings.Repeat("r", 64)},
}

// opFaults are malformed ops, each bad in both versions.
var opFaults = []decodeCase{
	{name: "missing op", frame: `{"ref":"5","ch":"lobby"}`, ref: "5", errPart: "missing op"},
	{name: "empty op", frame: `{"op":""}`, errPart: "missing op"},
	{name: "op not a string", frame: `{"op":5,"ref":"6"}`, ref: "6", errPart: "field op has the wrong type"},
	{name: "ch not a string", frame: `{"op":"join","ref":"7","ch":42}`, ref: "7", errPart: "field ch has the wrong type"},
	{name: "limit not an integer", frame: `{"op":"history","ch":"x","limit":1.5}`, errPart: "field limit has the wrong type"},
	{name: "ref not a string", frame: `{"op":"ping","ref":12}`, errPart: "field ref has the wrong type"},
	{name: "ref too long", frame: `{"op":"ping","ref":"` + strings.Repeat("r", 65) + `"}`, errPart: "ref longer than 64"},
	{name: "cid too long", frame: `{"op":"say","ref":"8","cid":"` + strings.Repeat("c", 65) + `"}`, ref: "8", errPart: "cid longer than 64"},
	{name: "resume with a negative seq", frame: `{"op":"auth","ref":"9","resume":{"lobby":-1}}`, ref: "9", errPart: "wrong type"},
	{name: "resume not an object", frame: `{"op":"auth","resume":[1]}`, errPart: "wrong type"},
}

// frameFaults are frames that are not JSON objects, bad in both versions.
var frameFaults = []decodeCase{
	{name: "invalid UTF-8", frame: "{\"op\":\"say\",\"text\":\"\xff\"}", errPart: "not valid UTF-8"},
	{name: "empty", frame: "", errPart: "must be a JSON object"},
	{name: "blank", frame: " \n", errPart: "must be a JSON object"},
	{name: "array", frame: `[{"op":"ping"}]`, errPart: "must be a JSON object"},
	{name: "string", frame: `"ping"`, errPart: "must be a JSON object"},
	{name: "number", frame: `42`, errPart: "must be a JSON object"},
	{name: "not JSON", frame: `not json`, errPart: "must be a JSON object"},
	{name: "truncated", frame: `{"op":"ping"`, errPart: "invalid JSON"},
	{name: "trailing garbage", frame: `{"op":"ping"} {}`, errPart: "invalid JSON"},
}

func TestDecodeV1(t *testing.T) {
	var cases []decodeCase
	cases = append(cases, opCases...)
	cases = append(cases, opFaults...)
	cases = append(cases, frameFaults...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []Command{{Op: "earlier"}}
			got, ref, err := V1{}.DecodeFrame(prefix, []byte(tc.frame), nil)
			checkDecode(t, tc, prefix, got, ref, err)
		})
	}
}

// envelope wraps bare ops into a v2 frame.
func envelope(ops ...string) string {
	return `{"t":12,"e":7,"ops":[` + strings.Join(ops, ",") + `]}`
}

func TestDecodeV2(t *testing.T) {
	var cases []decodeCase
	for _, tc := range opCases {
		tc.frame = envelope(tc.frame)
		cases = append(cases, tc)
	}
	for _, tc := range opFaults {
		tc.frame = envelope(tc.frame)
		cases = append(cases, tc)
	}
	cases = append(cases, frameFaults...)
	var all []string
	var allCmds []Command
	for _, tc := range opCases {
		all = append(all, tc.frame)
		allCmds = append(allCmds, tc.want...)
	}
	sixtyFour := strings.Repeat(`{"op":"ping"},`, 63) + `{"op":"ping"}`
	cases = append(cases, []decodeCase{
		{name: "every op in one frame, in order", frame: envelope(all...), want: allCmds},
		{name: "64 ops", frame: envelope(sixtyFour), want: slicesRepeat(Command{Op: OpPing}, 64)},
		{name: "members in any order, e absent", frame: ` { "ops" : [ {"op":"ping","ref":"p"} ] , "t" : 0 , "x":{"future":1} } `,
			want: []Command{{Op: OpPing, Ref: "p"}}, ref: "p"},
		{name: "e null counts as absent", frame: `{"t":1,"e":null,"ops":[{"op":"ping"}]}`, want: []Command{{Op: OpPing}}},
		{name: "largest clocks", frame: `{"t":9007199254740991,"e":9007199254740991,"ops":[{"op":"ping"}]}`, want: []Command{{Op: OpPing}}},

		{name: "bare op", frame: `{"op":"say","ref":"b1","ch":"lobby","text":"hi"}`, ref: "b1", errPart: "v2 frames are envelopes"},
		{name: "bare op with a long ref", frame: `{"op":"ping","ref":"` + strings.Repeat("r", 65) + `"}`, errPart: "v2 frames are envelopes"},
		{name: "no ops", frame: `{"t":1}`, errPart: "ops is required"},
		{name: "ops null", frame: `{"t":1,"ops":null}`, errPart: "ops is required"},
		{name: "ops empty", frame: `{"t":1,"ops":[]}`, errPart: "ops must not be empty"},
		{name: "ops an object", frame: `{"t":1,"ops":{"op":"ping"}}`, errPart: "ops must be an array"},
		{name: "ops a string", frame: `{"t":1,"ops":"ping"}`, errPart: "ops must be an array"},
		{name: "65 ops", frame: envelope(sixtyFour + `,{"op":"ping"}`), errPart: "at most 64 ops"},
		{name: "op not an object", frame: envelope(`{"op":"ping"}`, `"ping"`), errPart: "ops[1] is not a JSON object"},
		{name: "op null", frame: envelope(`null`), errPart: "ops[0] is not a JSON object"},
		{name: "nested envelope", frame: envelope(`[{"op":"ping"}]`), errPart: "ops[0] is not a JSON object"},
		{name: "t missing", frame: `{"ops":[{"op":"ping"}]}`, errPart: "t is required"},
		{name: "t null", frame: `{"t":null,"ops":[{"op":"ping"}]}`, errPart: "t is required"},
		{name: "t negative", frame: `{"t":-1,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer from 0"},
		{name: "t negative zero", frame: `{"t":-0,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "t fraction", frame: `{"t":1.0,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "t exponent", frame: `{"t":1e3,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "t string", frame: `{"t":"5","ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "t over 2^53-1", frame: `{"t":9007199254740992,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "t over int64", frame: `{"t":99999999999999999999,"ops":[{"op":"ping"}]}`, errPart: "t must be an integer"},
		{name: "e negative", frame: `{"t":1,"e":-5,"ops":[{"op":"ping"}]}`, errPart: "e must be an integer from 0"},
		{name: "e boolean", frame: `{"t":1,"e":true,"ops":[{"op":"ping"}]}`, errPart: "e must be an integer"},
		{name: "bad op among good ones", frame: envelope(`{"op":"join","ch":"a"}`, `{"ref":"r2","ch":"b"}`, `{"op":"ping"}`),
			ref: "r2", errPart: "ops[1]: missing op"},
	}...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []Command{{Op: "earlier"}}
			clk := NewClock(time.Now())
			got, ref, err := V2{}.DecodeFrame(prefix, []byte(tc.frame), clk)
			checkDecode(t, tc, prefix, got, ref, err)
		})
	}
}

func slicesRepeat(c Command, n int) []Command {
	out := make([]Command, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func checkDecode(t *testing.T, tc decodeCase, prefix, got []Command, ref string, err error) {
	t.Helper()
	if !reflect.DeepEqual(got[:1], prefix) {
		t.Fatalf("the commands already in dst were changed: %+v", got)
	}
	if tc.errPart != "" {
		if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || !strings.Contains(err.Error(), tc.errPart) {
			t.Fatalf("error = %v, want bad_request containing %q", err, tc.errPart)
		}
		if len(got) != 1 {
			t.Errorf("a refused frame appended commands: %+v", got[1:])
		}
		if ref != tc.ref {
			t.Errorf("ref = %q, want %q", ref, tc.ref)
		}
		return
	}
	if err != nil {
		t.Fatalf("error = %v", err)
	}
	if !reflect.DeepEqual(got[1:], tc.want) {
		t.Errorf("commands = %+v\nwant       %+v", got[1:], tc.want)
	}
	if len(tc.want) == 1 && ref != tc.ref {
		t.Errorf("ref = %q, want %q", ref, tc.ref)
	}
	for i, c := range got[1:] {
		if i < len(tc.want) && string(c.Data) != string(tc.want[i].Data) {
			t.Errorf("data = %s, want %s byte for byte", c.Data, tc.want[i].Data)
		}
	}
}

// TestDecodeV2Clock checks what a decoded frame records in the clock: its
// t always (once the envelope is valid), its e as a round-trip sample.
func TestDecodeV2Clock(t *testing.T) {
	clk := NewClock(t0)
	if _, _, err := decodeV2(nil, []byte(`{"t":500,"ops":[{"op":"ping"}]}`), clk, t0.Add(ms(100))); err != nil {
		t.Fatal(err)
	}
	if _, ok := clk.RTT(); ok {
		t.Error("RTT known from a frame without e")
	}
	if tt, e, ok := clk.Stamp(t0.Add(ms(130))); tt != 130 || e != 530 || !ok {
		t.Errorf("Stamp = %d, %d, %v; want 130, 530", tt, e, ok)
	}
	// An op fault still records the valid envelope's clocks.
	if _, _, err := decodeV2(nil, []byte(`{"t":700,"e":130,"ops":[{"nop":1}]}`), clk, t0.Add(ms(210))); err == nil {
		t.Fatal("a frame with a bad op was accepted")
	}
	if rtt, ok := clk.RTT(); !ok || rtt != ms(80) {
		t.Errorf("RTT = %v, %v; want 80ms", rtt, ok)
	}
	// An envelope fault records nothing.
	if _, _, err := decodeV2(nil, []byte(`{"t":900,"e":-1,"ops":[{"op":"ping"}]}`), clk, t0.Add(ms(300))); err == nil {
		t.Fatal("a frame with a negative e was accepted")
	}
	if _, e, _ := clk.Stamp(t0.Add(ms(300))); e != 790 {
		t.Errorf("echo = %d, want 700 + 90 ms held (the bad frame's t ignored)", e)
	}
	// A nil clock is allowed.
	if cmds, _, err := (V2{}).DecodeFrame(nil, []byte(`{"t":1,"ops":[{"op":"ping"}]}`), nil); err != nil || len(cmds) != 1 {
		t.Errorf("DecodeFrame with a nil clock = %v, %v", cmds, err)
	}
}

func TestReadEnvelope(t *testing.T) {
	env, err := ReadEnvelope([]byte(`{"t":3,"e":2,"ops":[{"op":"msg","ch":"a"}, {"op":"pong"}]}`), 2)
	if err != nil {
		t.Fatal(err)
	}
	if env.T != 3 || env.E != 2 || !env.HasE || len(env.Ops) != 2 ||
		string(env.Ops[0]) != `{"op":"msg","ch":"a"}` || string(env.Ops[1]) != `{"op":"pong"}` {
		t.Errorf("ReadEnvelope = %+v", env)
	}
	if _, err := ReadEnvelope([]byte(`{"t":3,"ops":[{},{},{}]}`), 2); !kaiwa.IsCode(err, kaiwa.CodeBadRequest) {
		t.Errorf("ReadEnvelope over maxOps = %v", err)
	}
}
