package jsonw

import (
	"encoding/json"
	"testing"
)

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnl\ncr\r", "\x00\x01\x1f", "日本語 😀", "bad \xff utf8", "\u2028\u2029", "<script>&"} {
		got := String(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("String(%q) = %s: not JSON: %v", s, got, err)
		}
		want := s
		if s == "bad \xff utf8" {
			want = "bad \ufffd utf8"
		}
		if back != want {
			t.Errorf("String(%q) decodes to %q", s, back)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"a", "\"\\", "\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("String(%q) = %s is not valid JSON: %v", s, out, err)
		}
		var ref string
		refOut, _ := json.Marshal(s)
		_ = json.Unmarshal(refOut, &ref)
		if back != ref {
			t.Fatalf("String(%q) decodes to %q, encoding/json round trip gives %q", s, back, ref)
		}
	})
}

func BenchmarkString(b *testing.B) {
	s := "こんにちは、世界! hello world, a typical chat line with \"quotes\""
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = String(buf[:0], s)
	}
}
