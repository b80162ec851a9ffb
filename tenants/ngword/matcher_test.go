package ngword

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// testWords and testAllow are the list most tests use. The words are
// given in assorted forms on purpose: the list is normalised too.
var (
	testWords = []string{
		"fuck", "SHIT", "bitch", "cunt", "ass", "penis", "kill yourself",
		"バカ", "しね", "ポンコツ", "ｸｿ",
	}
	testAllow = []string{"Scunthorpe", "classic", "assassin", "さばかん"}
)

func testMatcher(t testing.TB) *Matcher {
	t.Helper()
	m, err := Compile(testWords, testAllow)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

// TestEvasions: every disguised form of a listed word is caught, and the
// span covers exactly the disguised word.
func TestEvasions(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct {
		text string
		want string // the part of text that must be reported; "" means all of it
	}{
		{"fuck", ""},
		{"ｆｕｃｋ", ""},
		{"ＦＵＣＫ", ""},
		{"FuCk", ""},
		{"𝐟𝐮𝐜𝐤", ""},
		{"𝓯𝓾𝓬𝓴 off", "𝓯𝓾𝓬𝓴"},
		{"ⓕⓤⓒⓚ", ""},
		{"f\u200bu\u200bck", ""},
		{"f\u00adu\u00adc\u00adk", ""},
		{"f\ufe0fu\ufe0fck", ""},
		{"\u202efuck\u202c", "fuck"},
		{"f.u.c.k", ""},
		{"f u c k", ""},
		{"F_U_C_K!", "F_U_C_K"},
		{"what the f-u-c-k man", "f-u-c-k"},
		{"motherfucker", "fuck"},
		{"Ｓ　Ｈ　Ｉ　Ｔ", ""},
		{"s\u200dh\u200ci\ufefft", ""},
		{"ⓢⓗⓘⓣ!!", "ⓢⓗⓘⓣ"},
		{"ｂｉｔｃｈ", ""},
		{"a s s", ""},
		{"KILL...   Yourself", ""},
		{"ﾊﾞｶ", ""},
		{"バカ", ""},
		{"ばか", ""},
		{"ば か", ""},
		{"ば・か", ""},
		{"は゛か", ""},
		{"ﾊ゛ｶ", ""},
		{"ハ\u3099カ", ""},
		{"ばｶ", ""},
		{"お前ばかだな", "ばか"},
		{"ﾎﾟﾝｺﾂ", ""},
		{"ﾎ゜ﾝｺﾂ", ""},
		{"ポ ン コ ツ", ""},
		{"ぽんこつ", ""},
		{"ｼﾈ", ""},
		{"し\u200bね", ""},
		{"シ ネ", ""},
		{"くそっ", "くそ"},
		{"f🖕u🖕c🖕k", ""},
		{"f\nu\nc\nk", ""},
		{"ば❤か", ""},
		{"ﾊﾞ\u3000ｶ", ""},
	} {
		want := tc.want
		if want == "" {
			want = tc.text
		}
		start := strings.Index(tc.text, want)
		wantSpans := []Span{{start, start + len(want)}}
		got := m.Find(tc.text)
		if fmt.Sprint(got) != fmt.Sprint(wantSpans) {
			t.Errorf("Find(%q) = %v, want %v (%q)", tc.text, got, wantSpans, want)
		}
		if !m.Contains(tc.text) {
			t.Errorf("Contains(%q) = false", tc.text)
		}
		masked, ok := m.Mask(tc.text, '*')
		if !ok {
			t.Errorf("Mask(%q) masked nothing", tc.text)
		}
		checkMask(t, tc.text, got, masked, '*')
	}
}

// TestHarmless: ordinary text, and listed words inside allowed ones, pass.
func TestHarmless(t *testing.T) {
	m := testMatcher(t)
	for _, text := range []string{
		"",
		"this hit was great",
		"the pen is mightier than the sword",
		"is hit",
		"I am a bit tired, a s k me later", // "a s k" glues to "ask", not a word here
		"Scunthorpe United won 3-1",
		"SCUNTHORPE",
		"a classic assassin",
		"行けば、かならず会える",
		"さばかんを買った",
		"kill your self-doubt",
		"Thanks for the carry, see you at the castle gate tomorrow.",
		"今日のレイドお疲れさまでした！",
	} {
		if got := m.Find(text); got != nil {
			t.Errorf("Find(%q) = %v, want nil", text, got)
		}
		if m.Contains(text) {
			t.Errorf("Contains(%q) = true", text)
		}
		if masked, ok := m.Mask(text, '*'); ok || masked != text {
			t.Errorf("Mask(%q) = %q, %v; want it unchanged", text, masked, ok)
		}
	}
}

func TestAllowList(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct{ text, want string }{
		// The allowed word is spared, the same NG word elsewhere is not.
		{"a classic assassin ass", "a classic assassin ***"},
		{"ass classic", "*** classic"},
		{"Scunthorpe cunt", "Scunthorpe ****"},
		{"さばかんとばか", "さばかんと**"},
		// An allowed word must contain the whole match to cover it.
		{"さばか", "さ**"},
		{"class", "cl***"},
	} {
		got, _ := m.Mask(tc.text, '*')
		if got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct {
		text string
		mask rune
		want string
	}{
		{"I said f.u.c.k!", '*', "I said *******!"},
		{"ﾊﾞｶ野郎", '*', "***野郎"},
		{"は゛か", '＊', "＊＊＊"},
		{"𝐟𝐮𝐜𝐤 you", '#', "#### you"},
		{"fuckfuck", '*', "********"},
		{"asshit", '*', "******"}, // "ass" and "shit" overlap: one span
		{"you ass, you shit", '*', "you ***, you ****"},
		{"fuck", -1, "****"}, // an invalid mask rune becomes '*'
		{"bad \xff fuck \xfe", '*', "bad \xff **** \xfe"},
	} {
		got, ok := m.Mask(tc.text, tc.mask)
		if got != tc.want || !ok {
			t.Errorf("Mask(%q, %q) = %q, %v; want %q, true", tc.text, tc.mask, got, ok, tc.want)
		}
		mask := tc.mask
		if !utf8.ValidRune(mask) {
			mask = '*'
		}
		checkMask(t, tc.text, m.Find(tc.text), got, mask)
	}
}

func TestApply(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct {
		text, policy string
		out          string
		hit          bool
		code         kaiwa.Code
	}{
		{"hello ﾊﾞｶ", kaiwa.NGReject, "", true, kaiwa.CodeNGWord},
		{"hello ﾊﾞｶ", "", "", true, kaiwa.CodeNGWord},
		{"hello ﾊﾞｶ", kaiwa.NGMask, "hello ***", true, ""},
		{"a classic", kaiwa.NGReject, "a classic", false, ""},
		{"a classic", kaiwa.NGMask, "a classic", false, ""},
	} {
		out, hit, err := m.Apply(tc.text, tc.policy)
		if out != tc.out || hit != tc.hit || kaiwa.ErrorCode(err) != tc.code {
			t.Errorf("Apply(%q, %q) = %q, %v, %v; want %q, %v, code %q", tc.text, tc.policy, out, hit, err, tc.out, tc.hit, tc.code)
		}
	}
}

// TestSpansMerged: overlapping and touching matches come back as one span.
func TestSpansMerged(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct {
		text string
		want []Span
	}{
		{"fuckfuck", []Span{{0, 8}}},
		{"asshit", []Span{{0, 6}}},
		{"fuck and shit", []Span{{0, 4}, {9, 13}}},
		{"ばかばか", []Span{{0, 12}}},
	} {
		got := m.Find(tc.text)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Find(%q) = %v, want %v", tc.text, got, tc.want)
		}
		checkSpans(t, tc.text, got)
	}
}

// TestSquaredCharacter: a character that expands into several runes is
// covered whole when part of it matches.
func TestSquaredCharacter(t *testing.T) {
	m, err := Compile([]string{"成", "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ text, want string }{
		{"㍻元年", "*元年"},
		{"300㎈", "300*"}, // "cal": the iterator yields it one letter at a time
	} {
		if got, _ := m.Mask(tc.text, '*'); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tooMany := make([]string, kaiwa.MaxNGWords)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("w%d", i)
	}
	long := strings.Repeat("あ", kaiwa.MaxNGWordLen)
	for _, tc := range []struct {
		name         string
		words, allow []string
		msg          string
	}{
		{"too many", tooMany, []string{"one more"}, "at most"},
		{"too long", []string{long + "あ"}, nil, "longer than"},
		{"allow too long", []string{"ok"}, []string{long + "x"}, "allow-list entry"},
		{"punctuation only", []string{"fine", "..."}, nil, "no letters"},
		{"invisible only", []string{"\u200b\u200d"}, nil, "no letters"},
		{"spaces only", nil, []string{"   "}, "no letters"},
		{"empty", []string{""}, nil, "no letters"},
		{"invalid UTF-8", []string{"f\xffck"}, nil, "UTF-8"},
	} {
		m, err := Compile(tc.words, tc.allow)
		if m != nil || !kaiwa.IsCode(err, kaiwa.CodeBadRequest) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Compile = %v, %v; want a bad_request error about %q", tc.name, m, err, tc.msg)
		}
	}

	// The limits themselves are fine.
	m, err := Compile(append(tooMany[:kaiwa.MaxNGWords-2], long), []string{"x"})
	if err != nil {
		t.Fatalf("Compile at the limits: %v", err)
	}
	if m.Len() != kaiwa.MaxNGWords-1 {
		t.Errorf("Len = %d, want %d", m.Len(), kaiwa.MaxNGWords-1)
	}
	if !m.Contains("w12345") || !m.Contains(long) {
		t.Error("a list at the limits does not match its words")
	}
}

func TestLen(t *testing.T) {
	m, err := Compile([]string{"バカ", "ばか", "ﾊﾞｶ", "は゛か", "Fuck", "f u c k", "shit"}, []string{"さばかん"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want 3 (duplicates after normalising count once)", m.Len())
	}
}

func TestEmptyMatchers(t *testing.T) {
	empty, err := Compile(nil, []string{"classic"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Matcher{nil, empty} {
		if m.Len() != 0 || m.Find("fuck") != nil || m.Contains("fuck") {
			t.Errorf("%v matches something", m)
		}
		if got, ok := m.Mask("fuck", '*'); got != "fuck" || ok {
			t.Errorf("Mask = %q, %v", got, ok)
		}
	}
}

// TestConcurrentUse: one Matcher serves many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	m := testMatcher(t)
	texts := []string{"I said f.u.c.k!", "ﾊﾞｶ野郎", "a classic assassin ass", "this hit", "ﾎﾟﾝｺﾂ"}
	want := make([]string, len(texts))
	for i, s := range texts {
		want[i] = fmt.Sprint(m.Find(s))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := fmt.Sprint(m.Find(texts[k])); got != want[k] {
					errs <- fmt.Sprintf("Find(%q) = %s, want %s", texts[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestFindCleanAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	m := testMatcher(t)
	text := "Thanks for the carry! 今日のレイドお疲れさまでした。ﾎﾟｰｼｮﾝ忘れずに、a classic move"
	m.Find(text)
	if n := testing.AllocsPerRun(100, func() { m.Find(text) }); n != 0 {
		t.Errorf("Find on a clean text allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.Contains(text) }); n != 0 {
		t.Errorf("Contains on a clean text allocates %v times", n)
	}
}

// checkSpans fails t unless spans are in order, non-empty, non-touching
// and within text on the rune boundaries of its decoding.
func checkSpans(t testing.TB, text string, spans []Span) {
	t.Helper()
	boundary := make([]bool, len(text)+1)
	for i := 0; i < len(text); {
		boundary[i] = true
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	boundary[len(text)] = true
	prev := -1
	for _, sp := range spans {
		if sp.Start < 0 || sp.End > len(text) || sp.Start >= sp.End || sp.Start <= prev {
			t.Fatalf("spans %v of %q: %v out of order, empty or out of range", spans, text, sp)
		}
		if !boundary[sp.Start] || !boundary[sp.End] {
			t.Fatalf("spans %v of %q: %v not on rune boundaries", spans, text, sp)
		}
		prev = sp.End
	}
}

// checkMask fails t unless masked is text with each rune inside spans
// replaced by mask and every other byte kept.
func checkMask(t testing.TB, text string, spans []Span, masked string, mask rune) {
	t.Helper()
	checkSpans(t, text, spans)
	m := string(mask)
	p, q := 0, 0
	for _, sp := range spans {
		keep := text[p:sp.Start]
		if !strings.HasPrefix(masked[q:], keep) {
			t.Fatalf("Mask(%q) = %q: bytes %d..%d changed", text, masked, p, sp.Start)
		}
		q += len(keep)
		n := utf8.RuneCountInString(text[sp.Start:sp.End])
		for range n {
			if !strings.HasPrefix(masked[q:], m) {
				t.Fatalf("Mask(%q) = %q: want %d × %q for %q", text, masked, n, m, text[sp.Start:sp.End])
			}
			q += len(m)
		}
		p = sp.End
	}
	if masked[q:] != text[p:] {
		t.Fatalf("Mask(%q) = %q: tail changed", text, masked)
	}
}
