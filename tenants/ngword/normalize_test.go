package ngword

import (
	"testing"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"fuck", "fuck"},
		{"FuCk", "fuck"},
		{"ＦＵＣＫ", "fuck"},
		{"𝐟𝐮𝐜𝐤", "fuck"},
		{"ⓕⓤⓒⓚ", "fuck"},
		{"ﬁne", "fine"},
		{"Straße", "strasse"},
		{"ΣΊΣΥΦΟΣ", "σίσυφοσ"},

		// Format characters and variation selectors are dropped.
		{"f\u200bu\u00adc\u2060k", "fuck"},
		{"\u202efuck\u202c", "fuck"},
		{"f\ufe0fu\U000E0041ck", "fuck"},
		{"ば\u200dか", "ばか"},

		// Kana: katakana to hiragana, half-width, voiced marks in every form.
		{"バカ", "ばか"},
		{"ﾊﾞｶ", "ばか"},
		{"は゛か", "ばか"},
		{"ﾊ゛ｶ", "ばか"},
		{"ハ\u3099カ", "ばか"},
		{"は\uff9eか", "ばか"},
		{"は\u200b゛か", "ばか"},
		{"ﾎﾟﾝｺﾂ", "ぽんこつ"},
		{"ﾎ゜ﾝｺﾂ", "ぽんこつ"},
		{"ｶﾞｯﾂ", "がっつ"},
		{"ヴ", "ゔ"},
		{"ヷ", "わ\u3099"},
		{"ヷ\u0337", "わ\u0337\u3099"}, // marks stay in canonical order
		{"ワ\u3099", "わ\u3099"},
		{"㋐", "あ"},
		{"㌔", "きろ"},
		{"㍻", "平成"},

		// Marks stay on their letter, go where they follow nothing.
		{"año", "año"},
		{"A\u0301", "á"},
		{"\u3099か", "か"},
		{"か ゛", "か"},
		{"か゚", "か\u309a"},

		// Separators.
		{"f.u.c.k", "fuck"},
		{"f u c k", "fuck"},
		{"F_U_C_K!", "fuck"},
		{"f u c k you", "fuck you"},
		{"f u ck", "fu ck"},
		{"this hit", "this hit"},
		{"the pen is", "the pen is"},
		{"  Hello,   World!! ", "hello world"},
		{"Ｓ　Ｈ　Ｉ　Ｔ", "shit"},
		{"ば か", "ばか"},
		{"ば・か", "ばか"},
		{"行けば、かならず", "行けば かならず"},
		{"a 🍆 b", "ab"},
		{"x\xffy", "xy"},
		{"xy\xffz", "xy z"},
		{"ᄀ ᅡ", "ᄀ ᅡ"},   // gluing would compose them
		{"ᄐㅘ", "\ud1bc"}, // ㅘ decomposes to a vowel jamo that composes with ᄐ
		{"...", ""},
		{"\u200b", ""},
	} {
		got := Normalize(tc.in)
		if got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := Normalize(got); again != got {
			t.Errorf("Normalize(Normalize(%q)) = %q, want %q", tc.in, again, got)
		}
	}
}

// TestNormalizeTable checks that every BMP rune the table handles alone
// normalises as the slow path would have it in any context: alone, and
// between two letters.
func TestNormalizeTable(t *testing.T) {
	tab := tables()
	sc := &scanner{caser: cases.Fold()}
	fast := 0
	for r := rune(0); r < 0x10000; r++ {
		if tab.flags[r]&fFast == 0 {
			continue
		}
		fast++
		s := string(r)
		if !utf8.ValidString(s) {
			continue
		}
		for _, text := range []string{s, "x" + s + "y"} {
			sc.units = sc.units[:0]
			sc.slow(text, 0, len(text))
			sc.finish()
			slow := string(unitRunes(sc.units))
			if got := Normalize(text); got != slow {
				t.Fatalf("U+%04X: Normalize(%q) = %q, the full pipeline gives %q", r, text, got, slow)
			}
		}
	}
	if fast < 50000 {
		t.Errorf("only %d BMP runes take the fast path", fast)
	}
}

func unitRunes(u []unit) []rune {
	rs := make([]rune, len(u))
	for i, x := range u {
		rs[i] = x.r
	}
	return rs
}

func TestNormalizeReturnsInputWhenNormal(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	s := "already normal text ばか 平成"
	Normalize(s)
	if n := testing.AllocsPerRun(100, func() { Normalize(s) }); n != 0 {
		t.Errorf("Normalize of normal text allocates %v times", n)
	}
}
