package versions

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

// encodeCommand writes c back as a client op, data spliced in byte for
// byte, as a client would send it.
func encodeCommand(tb testing.TB, c Command) []byte {
	tb.Helper()
	b, err := json.Marshal(struct {
		Op          string             `json:"op"`
		Ref         string             `json:"ref,omitempty"`
		Token       string             `json:"token,omitempty"`
		Ch          string             `json:"ch,omitempty"`
		To          string             `json:"to,omitempty"`
		Text        string             `json:"text,omitempty"`
		Limit       int                `json:"limit,omitempty"`
		Before      string             `json:"before,omitempty"`
		CID         string             `json:"cid,omitempty"`
		Resume      map[string]uint64  `json:"resume,omitempty"`
		ID          string             `json:"id,omitempty"`
		Emoji       string             `json:"emoji,omitempty"`
		Seq         uint64             `json:"seq,omitempty"`
		User        string             `json:"user,omitempty"`
		Q           string             `json:"q,omitempty"`
		ReplyTo     string             `json:"reply_to,omitempty"`
		Attachments []kaiwa.Attachment `json:"attachments,omitempty"`
	}{c.Op, c.Ref, c.Token, c.Ch, c.To, c.Text, c.Limit, c.Before, c.CID, c.Resume,
		c.ID, c.Emoji, c.Seq, c.User, c.Q, c.ReplyTo, c.Attachments})
	if err != nil {
		tb.Fatalf("encode %+v: %v", c, err)
	}
	// An empty but present object or list decodes to a non-nil value, which
	// omitempty would drop.
	if c.Resume != nil && len(c.Resume) == 0 {
		b = append(b[:len(b)-1], `,"resume":{}}`...)
	}
	if c.Attachments != nil && len(c.Attachments) == 0 {
		b = append(b[:len(b)-1], `,"attachments":[]}`...)
	}
	if len(c.Data) > 0 {
		b = append(append(append(b[:len(b)-1], `,"data":`...), c.Data...), '}')
	}
	return b
}

func fuzzSeeds(f *testing.F, v2 bool) {
	var cases []decodeCase
	cases = append(cases, opCases...)
	cases = append(cases, opFaults...)
	for _, tc := range cases {
		if v2 {
			tc.frame = envelope(tc.frame)
		}
		f.Add([]byte(tc.frame))
	}
	for _, tc := range frameFaults {
		f.Add([]byte(tc.frame))
	}
	if v2 {
		f.Add([]byte(`{"t":0,"ops":[{"op":"ping"},{"op":"join","ch":"a"}]}`))
		f.Add([]byte(`{"t":1.5,"ops":[{"op":"ping"}]}`))
		f.Add([]byte(`{"t":1,"e":null,"ops":[]}`))
		f.Add([]byte(`{"op":"ping","ref":"x"}`))
		f.Add([]byte(`{"t":9007199254740991,"e":9007199254740991,"ops":[{"op":"ping"}]}`))
	}
}

// FuzzDecodeV1 checks that no frame makes the v1 decoder panic, that
// refusals are bad_request, and that an accepted frame, written back from
// its command, decodes to the same command.
func FuzzDecodeV1(f *testing.F) {
	fuzzSeeds(f, false)
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmds, ref, err := V1{}.DecodeFrame(nil, frame, nil)
		if err != nil {
			if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || len(cmds) != 0 || len(ref) > kaiwa.MaxRefLen {
				t.Fatalf("refusal = %v, %d commands, ref %q", err, len(cmds), ref)
			}
			return
		}
		if len(cmds) != 1 || ref != cmds[0].Ref {
			t.Fatalf("accepted %q as %+v, ref %q", frame, cmds, ref)
		}
		again, _, err := V1{}.DecodeFrame(nil, encodeCommand(t, cmds[0]), nil)
		if err != nil || !reflect.DeepEqual(again, cmds) {
			t.Fatalf("%q decoded to %+v; re-encoded, to %+v, %v", frame, cmds, again, err)
		}
	})
}

// FuzzDecodeV2 checks the same for v2, plus the envelope: a refused frame
// appends nothing, and an accepted one, written back with its clocks and
// its commands, decodes to the same commands and leaves the clock in the
// same state.
func FuzzDecodeV2(f *testing.F) {
	fuzzSeeds(f, true)
	f.Fuzz(func(t *testing.T, frame []byte) {
		now := t0.Add(ms(5000))
		clk := NewClock(t0)
		cmds, ref, err := decodeV2(nil, frame, clk, now)
		if err != nil {
			if !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || len(cmds) != 0 || len(ref) > kaiwa.MaxRefLen {
				t.Fatalf("refusal = %v, %d commands, ref %q", err, len(cmds), ref)
			}
			return
		}
		if len(cmds) == 0 || len(cmds) > V2MaxBatch {
			t.Fatalf("accepted %q as %d commands", frame, len(cmds))
		}
		env, err := ReadEnvelope(frame, V2MaxBatch)
		if err != nil {
			t.Fatalf("DecodeFrame accepted %q, ReadEnvelope refuses it: %v", frame, err)
		}
		ops := make([][]byte, len(cmds))
		for i, c := range cmds {
			ops[i] = encodeCommand(t, c)
		}
		again := appendEnvelope(nil, ops, env.T, env.E, env.HasE)
		clk2 := NewClock(t0)
		cmds2, _, err := decodeV2(nil, again, clk2, now)
		if err != nil || !reflect.DeepEqual(cmds2, cmds) {
			t.Fatalf("%q decoded to %+v; re-encoded as %s, to %+v, %v", frame, cmds, again, cmds2, err)
		}
		later := now.Add(ms(7))
		t1, e1, ok1 := clk.Stamp(later)
		t2, e2, ok2 := clk2.Stamp(later)
		r1, rok1 := clk.RTT()
		r2, rok2 := clk2.RTT()
		if t1 != t2 || e1 != e2 || ok1 != ok2 || !ok1 || e1 != min(env.T+7, MaxClock) || r1 != r2 || rok1 != rok2 {
			t.Fatalf("clocks differ: %d %d %v rtt %v %v; again %d %d %v rtt %v %v", t1, e1, ok1, r1, rok1, t2, e2, ok2, r2, rok2)
		}
	})
}
