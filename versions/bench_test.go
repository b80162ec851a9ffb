package versions

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

var benchMsg = kaiwa.Message{
	Tenant: "acme", Channel: "guild.42", ID: "01JH6Z8Q3K7M2W5X9Y4V0T1R8S", Seq: 184467, Prev: 184466,
	From: "player-12345", Name: "Hero of Time", Text: "こんにちは、世界! anyone up for the raid at nine?",
	Data: json.RawMessage(`{"emote":"wave","item":{"id":4471,"q":3}}`), TS: 1767225601200,
}

// BenchmarkEncodeMessage encodes one chat message, once per version: the
// work a UA does per message and version, whatever the recipient count.
func BenchmarkEncodeMessage(b *testing.B) {
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.codec.EncodeMessage(&benchMsg)
			}
		})
	}
}

// BenchmarkAppendFrame wraps encoded ops into a v2 frame with the session
// clock, reusing the buffer as a session's writer does.
func BenchmarkAppendFrame(b *testing.B) {
	op := V2{}.EncodeMessage(&benchMsg)
	for _, n := range []int{1, 16} {
		b.Run(strconv.Itoa(n)+"ops", func(b *testing.B) {
			ops := make([][]byte, n)
			for i := range ops {
				ops[i] = op
			}
			clk := NewClock(time.Now())
			clk.Record(time.Now(), 1234, 0, false)
			buf := V2{}.AppendFrame(nil, ops, clk)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = V2{}.AppendFrame(buf[:0], ops, clk)
			}
		})
	}
}

// BenchmarkDecodeFrame decodes a client's say, bare (v1) and in an
// envelope (v2).
func BenchmarkDecodeFrame(b *testing.B) {
	say := `{"op":"say","ref":"c42","ch":"guild.42","text":"anyone up for the raid at nine?","data":{"emote":"wave"},"cid":"k3J9x"}`
	for _, tc := range []struct {
		name  string
		codec Codec
		frame string
	}{
		{"v1", V1{}, say},
		{"v2", V2{}, `{"t":73125,"e":73090,"ops":[` + say + `]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			frame := []byte(tc.frame)
			clk := NewClock(time.Now())
			var cmds []Command
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if cmds, _, err = tc.codec.DecodeFrame(cmds[:0], frame, clk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
