package ngword

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// benchRunes is the length of the benchmark messages, in characters.
const benchRunes = 500

// Chat lines of a game, alternating Japanese and English, that hold no
// word of benchWords; dirtyLines hide a few listed words in them.
var (
	cleanLines = []string{
		"今日のレイドお疲れさまでした！次は土曜日の夜九時からです。",
		"Thanks for the carry, see you at the castle gate tomorrow. ",
		"ボス戦の前にポーションを忘れずに買っておいてね。",
		"Anyone up for a quick dungeon run before the weekly reset? ",
		"ギルドハウスの家具、だれか手伝ってくれる？",
		"GG everyone, that last pull was close! ",
		"ﾒﾝﾃﾅﾝｽ明けにイベントが始まるらしいよ。",
		"Selling two ＳＳＲ swords, whisper me for the price. ",
	}
	dirtyLines = []string{
		"今日のレイドお疲れさまでした！次は土曜日の夜九時からです。",
		"Thanks for the f.u.c.k-ing carry, see you at the gate. ",
		"ボス戦の前にﾎﾟｰｼｮﾝを忘れずに買っておいてね、ﾊﾞｶ。",
		"Anyone up for a quick dungeon run before the weekly reset? ",
		"ギルドハウスの家具、だれか手伝ってくれる？ し\u200bね",
		"GG everyone, that last pull was ＳＨＩＴ! ",
		"ﾒﾝﾃﾅﾝｽ明けにイベントが始まるらしいよ。",
		"Selling two ＳＳＲ swords, whisper me for the price. ",
	}
)

// benchMessage joins lines, over and over, into a message of exactly
// benchRunes characters.
func benchMessage(lines []string) string {
	var b strings.Builder
	n := 0
	for i := 0; n < benchRunes; i++ {
		for _, r := range lines[i%len(lines)] {
			if n == benchRunes {
				break
			}
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}

// benchWords returns n distinct NG words, the same every time: a few real
// ones and made-up English, hiragana, katakana and kanji words, none of
// which occurs in the clean message.
func benchWords(n int) []string {
	clean := Normalize(benchMessage(cleanLines))
	rng := rand.New(rand.NewPCG(2024, 6))
	words := []string{"fuck", "shit", "bitch", "cunt", "ばか", "しね", "くそ", "ぽんこつ", "きもい", "うざい"}
	seen := map[string]bool{}
	for _, w := range words {
		seen[Normalize(w)] = true
	}
	word := func(min, max int, letter func() rune) string {
		rs := make([]rune, min+rng.IntN(max-min+1))
		for i := range rs {
			rs[i] = letter()
		}
		return string(rs)
	}
	for len(words) < n {
		var w string
		switch k := rng.IntN(10); {
		case k < 4:
			w = word(5, 9, func() rune { return 'a' + rng.Int32N(26) })
		case k < 7:
			w = word(3, 5, func() rune { return 'ぁ' + rng.Int32N(0x56) })
		case k < 9:
			w = word(3, 5, func() rune { return 'ァ' + rng.Int32N(0x56) })
		default:
			w = word(2, 3, func() rune { return '一' + rng.Int32N(0x5000) })
		}
		nw := Normalize(w)
		if nw == "" || seen[nw] || strings.Contains(clean, nw) {
			continue
		}
		seen[nw] = true
		words = append(words, w)
	}
	return words
}

func BenchmarkMatch500x10k(b *testing.B) {
	m, err := Compile(benchWords(10000), []string{"classic", "さばかん"})
	if err != nil {
		b.Fatal(err)
	}
	clean, dirty := benchMessage(cleanLines), benchMessage(dirtyLines)
	if utf8.RuneCountInString(clean) != benchRunes || utf8.RuneCountInString(dirty) != benchRunes {
		b.Fatal("benchmark messages are not 500 characters")
	}
	if spans := m.Find(clean); spans != nil {
		b.Fatalf("clean message matches at %v", spans)
	}
	hidden := 0
	for _, w := range []string{"f.u.c.k", "ﾊﾞｶ", "し\u200bね", "ＳＨＩＴ"} {
		hidden += strings.Count(dirty, w)
	}
	if spans := m.Find(dirty); len(spans) != hidden {
		b.Fatalf("dirty message matches at %v, want the %d hidden words", spans, hidden)
	}
	for _, bc := range []struct {
		name string
		text string
		op   func(string)
	}{
		{"clean", clean, func(s string) { m.Find(s) }},
		{"dirty", dirty, func(s string) { m.Find(s) }},
		{"dirty-mask", dirty, func(s string) { m.Mask(s, '*') }},
		{"clean-contains", clean, func(s string) { m.Contains(s) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				bc.op(bc.text)
			}
		})
	}
}

func BenchmarkNormalize500(b *testing.B) {
	text := benchMessage(cleanLines)
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Normalize(text)
	}
}

func BenchmarkCompile10k(b *testing.B) {
	words := benchWords(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(words, nil); err != nil {
			b.Fatal(err)
		}
	}
}
