package ngword

import (
	"sync"
	"testing"
	"unicode/utf8"
)

var fuzzMatcher = sync.OnceValues(func() (*Matcher, error) {
	return Compile(append(testWords, "a", "平成", "ᄀ", "ゔ", "σ"), testAllow)
})

// FuzzNormalize: normalisation never panics, is idempotent and yields
// valid UTF-8; Find's spans are ordered, merged and on rune boundaries;
// Contains agrees with Find and sees the same in the normalised text; Mask
// keeps every byte outside the spans and masks each rune inside them.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"", "fuck", "ＦＵＣＫ", "𝐟𝐮𝐜𝐤", "f\u200bu\u200bck", "f.u.c.k", "f u c k you",
		"ﾊﾞｶ", "バカ", "ば か", "は゛か", "ﾎﾟﾝｺﾂ", "ヷ", "㍻", "ﬁ", "Straße", "İ",
		"a classic assassin ass", "Scunthorpe", "さばかんとばか", "行けば、かならず",
		"\u3099か", "か ゛", "ᄀ ᅡ", "ᄐㅘ", "ヷ\u0337", "㎈", "\xff\xfe", "x\xffy", "\u0e33", "a\u0301\u0302",
		"a" + string(make([]byte, 3)) + "b", "e" + repeat("\u0301", 40), "\U000E0041\u034f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if !utf8.ValidString(n) {
			t.Fatalf("Normalize(%q) = %q, not valid UTF-8", s, n)
		}
		if n2 := Normalize(n); n2 != n {
			t.Fatalf("Normalize not idempotent: %q → %q → %q", s, n, n2)
		}

		m, err := fuzzMatcher()
		if err != nil {
			t.Fatal(err)
		}
		spans := m.Find(s)
		checkSpans(t, s, spans)
		hit := m.Contains(s)
		if hit != (spans != nil) {
			t.Fatalf("Contains(%q) = %v, Find = %v", s, hit, spans)
		}
		if m.Contains(n) != hit {
			t.Fatalf("Contains(%q) = %v, Contains(Normalize) = %v", s, hit, !hit)
		}
		masked, ok := m.Mask(s, '●')
		if ok != hit {
			t.Fatalf("Mask(%q) reports %v, Contains %v", s, ok, hit)
		}
		checkMask(t, s, spans, masked, '●')
		if utf8.ValidString(s) && !utf8.ValidString(masked) {
			t.Fatalf("Mask(%q) = %q, not valid UTF-8", s, masked)
		}
	})
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
