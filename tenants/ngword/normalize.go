package ngword

import (
	"bytes"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Normalize returns the form of s that [Matcher] compares: compatibility
// forms, case, kana and voiced marks unified, invisible characters dropped,
// and every run of separators either removed (between single letters) or
// written as one space; no leading or trailing space. The package
// documentation lists the steps. Normalize is idempotent:
// Normalize(Normalize(s)) == Normalize(s) for every s, valid UTF-8 or not.
func Normalize(s string) string {
	sc := getScanner()
	defer putScanner(sc)
	sc.scan(s)
	buf := sc.out[:0]
	for _, u := range sc.units {
		buf = utf8.AppendRune(buf, u.r)
	}
	sc.out = buf
	if string(buf) == s {
		return s
	}
	return string(buf)
}

// The kinds of normalised units.
const (
	kindLetter uint8 = iota + 1 // a letter or digit
	kindMark                    // a combining mark kept on the letter before it
	kindSep                     // a run of separators
)

// unit is one rune of the normalised stream and the bytes [start, end) of
// the original text it came from. Runes that one original segment
// expands into share its range; dropped characters inside a match fall
// between the ranges of its first and last unit.
type unit struct {
	r          rune
	start, end int
	kind       uint8
}

// maxPooledUnits bounds the buffers a pooled scanner keeps, so that one
// huge text does not pin its memory for the life of the process.
const maxPooledUnits = 1 << 14

// scanner turns a text into its normalised units. It holds every buffer
// the work needs, so that a warm scanner allocates nothing; scanners are
// pooled and used by one goroutine at a time.
type scanner struct {
	units []unit

	// pre is the slow chunk being normalised, with format characters
	// dropped and spacing voiced marks made combining; preStart and
	// preEnd give, at the offset of each rune of pre, the original bytes
	// it came from.
	pre              []byte
	preStart, preEnd []int

	fold, kanaBuf, nfkc []byte // scratch for case folding, kana and renormalising
	caser               cases.Caser
	iter                norm.Iter

	hits, allows []match // matches found by Matcher.run
	out          []byte  // Normalize's result
}

var scanners = sync.Pool{New: func() any { return &scanner{caser: cases.Fold()} }}

func getScanner() *scanner { return scanners.Get().(*scanner) }

func putScanner(sc *scanner) {
	if cap(sc.units) > maxPooledUnits || cap(sc.pre) > 4*maxPooledUnits ||
		cap(sc.out) > 4*maxPooledUnits || cap(sc.hits) > maxPooledUnits || cap(sc.allows) > maxPooledUnits {
		return
	}
	scanners.Put(sc)
}

// scan fills sc.units with the normalised form of s.
//
// Most characters are handled one at a time from a table ("fast" runes:
// the rune alone normalises to one letter or to separators). Where a rune
// can combine with the next one (a base before a combining mark, a kana
// before a voiced mark, anything before a dropped format character) the
// text up to the next certain segment boundary goes through the full
// pipeline in slow.
func (sc *scanner) scan(s string) {
	t := tables()
	sc.units = sc.units[:0]
	n := len(s)
	for i := 0; i < n; {
		c := s[i]
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		next := i + size
		if r < 0x10000 {
			if f := t.flags[r]; f&fFast != 0 && (next == n || t.boundaryAt(s, next)) {
				if f&fSep != 0 {
					sc.sep(i, next)
				} else {
					sc.letter(rune(t.repl[r]), i, next)
				}
				i = next
				continue
			}
		}
		j := next
		for j < n && !t.boundaryAt(s, j) {
			_, sz := utf8.DecodeRuneInString(s[j:])
			j += sz
		}
		sc.slow(s, i, j)
		i = j
	}
	sc.finish()
}

// slow normalises s[i:j], which starts and ends at normalisation segment
// boundaries: it drops format characters, turns the spacing voiced marks
// into combining ones, applies NFKC segment by segment and hands each
// segment to segment with the original bytes it covers.
func (sc *scanner) slow(s string, i, j int) {
	sc.pre, sc.preStart, sc.preEnd = sc.pre[:0], sc.preStart[:0], sc.preEnd[:0]
	for k := i; k < j; {
		r, size := utf8.DecodeRuneInString(s[k:j])
		switch {
		case r == 0x309B: // ゛ KATAKANA-HIRAGANA VOICED SOUND MARK
			r = 0x3099
		case r == 0x309C: // ゜ KATAKANA-HIRAGANA SEMI-VOICED SOUND MARK
			r = 0x309A
		case isDrop(r):
			k += size
			continue
		}
		sc.pre = utf8.AppendRune(sc.pre, r)
		for len(sc.preStart) < len(sc.pre) {
			sc.preStart = append(sc.preStart, k)
			sc.preEnd = append(sc.preEnd, k+size)
		}
		k += size
	}
	if len(sc.pre) == 0 {
		return
	}
	sc.iter.Init(norm.NFKC, sc.pre)
	for !sc.iter.Done() {
		p0 := sc.iter.Pos()
		seg := sc.iter.Next()
		p1 := sc.iter.Pos()
		var start, end int
		switch {
		case p1 > p0:
			last := p1 - 1
			for last > p0 && !utf8.RuneStart(sc.pre[last]) {
				last--
			}
			start, end = sc.preStart[p0], sc.preEnd[last]
		case p0 < len(sc.pre):
			// Part of the expansion of the rune at p0 (㎈ → "c" "a" "l"):
			// the iterator moves on after the last part.
			start, end = sc.preStart[p0], sc.preEnd[p0]
		default:
			start, end = sc.preEnd[len(sc.pre)-1], sc.preEnd[len(sc.pre)-1]
		}
		sc.segment(seg, start, end)
	}
}

// segment case-folds one NFKC segment and turns its katakana into
// hiragana, renormalising until that changes nothing (so that marks stay
// in canonical order), and emits its runes, all mapped to the original
// bytes [start, end).
func (sc *scanner) segment(seg []byte, start, end int) {
	b := seg
	for range 4 {
		f := sc.kana(sc.caseFold(b))
		if bytes.Equal(f, b) {
			break
		}
		sc.nfkc = norm.NFKC.Append(sc.nfkc[:0], f...)
		b = sc.nfkc
	}
	for k := 0; k < len(b); {
		r, size := utf8.DecodeRune(b[k:])
		k += size
		sc.rune(r, start, end)
	}
}

// caseFold returns the full case folding of src in sc.fold.
func (sc *scanner) caseFold(src []byte) []byte {
	ascii := true
	for _, c := range src {
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			ascii = false
			break
		}
	}
	if ascii {
		return src
	}
	if need := 3*len(src) + 8; cap(sc.fold) < need {
		sc.fold = make([]byte, need)
	}
	dst := sc.fold[:cap(sc.fold)]
	for {
		sc.caser.Reset()
		nDst, nSrc, err := sc.caser.Transform(dst, src, true)
		if err == transform.ErrShortDst {
			dst = make([]byte, 2*len(dst))
			sc.fold = dst
			continue
		}
		if err != nil || nSrc != len(src) {
			return src
		}
		return dst[:nDst]
	}
}

// kana returns src with katakana turned into hiragana, in sc.kanaBuf when
// there were any.
func (sc *scanner) kana(src []byte) []byte {
	found := false
	for k := 0; k+2 < len(src); k++ {
		// U+30A1..U+30FE are E3 82 A1..E3 83 BE in UTF-8.
		if src[k] == 0xE3 && (src[k+1] == 0x82 && src[k+2] >= 0xA1 || src[k+1] == 0x83 && src[k+2] <= 0xBE) {
			found = true
			break
		}
	}
	if !found {
		return src
	}
	dst := sc.kanaBuf[:0]
	for k := 0; k < len(src); {
		r, size := utf8.DecodeRune(src[k:])
		k += size
		switch {
		case 0x30A1 <= r && r <= 0x30F6, r == 0x30FD, r == 0x30FE: // katakana, ヽ ヾ
			dst = utf8.AppendRune(dst, r-0x60)
		case 0x30F7 <= r && r <= 0x30FA: // ヷ ヸ ヹ ヺ: no precomposed hiragana
			dst = utf8.AppendRune(dst, [...]rune{'わ', 'ゐ', 'ゑ', 'を'}[r-0x30F7])
			dst = utf8.AppendRune(dst, 0x3099)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	sc.kanaBuf = dst
	return dst
}

// rune emits one rune of normalised output: format characters go, marks
// join the letter before them, and everything that is neither letter,
// digit nor mark is a separator.
func (sc *scanner) rune(r rune, start, end int) {
	switch {
	case isDrop(r):
	case unicode.IsMark(r):
		sc.mark(r, start, end)
	case unicode.IsLetter(r) || unicode.IsNumber(r):
		sc.letter(r, start, end)
	default:
		sc.sep(start, end)
	}
}

func (sc *scanner) letter(r rune, start, end int) {
	sc.units = append(sc.units, unit{r: r, start: start, end: end, kind: kindLetter})
}

// mark keeps a combining mark only on a letter: a mark at the start or
// after a separator has nothing to modify and is dropped.
func (sc *scanner) mark(r rune, start, end int) {
	if n := len(sc.units); n > 0 && sc.units[n-1].kind != kindSep {
		sc.units = append(sc.units, unit{r: r, start: start, end: end, kind: kindMark})
	}
}

// sep adds a separator, merged into the run before it.
func (sc *scanner) sep(start, end int) {
	if n := len(sc.units); n > 0 && sc.units[n-1].kind == kindSep {
		sc.units[n-1].end = end
		return
	}
	sc.units = append(sc.units, unit{r: ' ', start: start, end: end, kind: kindSep})
}

// finish applies the separator rule: leading and trailing separators go; a
// run between two tokens of exactly one letter each goes too (spaced-out
// letters, "f.u.c.k", "ば か"), unless the letter after it could combine
// with the one before under NFKC; every other run becomes one space.
func (sc *scanner) finish() {
	u := sc.units
	w := 0
	single := 0 // letters in the current token of the input, capped at 2
	for i := 0; i < len(u); i++ {
		x := u[i]
		if x.kind != kindSep {
			if x.kind == kindLetter && single < 2 {
				single++
			}
			u[w] = x
			w++
			continue
		}
		leading, trailing := w == 0, i+1 == len(u)
		glue := !leading && !trailing && single == 1 && singleLetter(u[i+1:]) && startsSegment(u[i+1].r)
		single = 0
		if leading || trailing || glue {
			continue
		}
		u[w] = x
		w++
	}
	sc.units = u[:w]
}

// singleLetter reports whether the token at the start of u has exactly one
// letter.
func singleLetter(u []unit) bool {
	n := 0
	for _, x := range u {
		if x.kind == kindSep {
			break
		}
		if x.kind == kindLetter {
			if n++; n > 1 {
				return false
			}
		}
	}
	return n == 1
}

// startsSegment reports whether r never combines with a rune before it.
func startsSegment(r rune) bool {
	if r < 0x10000 {
		return tables().flags[r]&fBoundary != 0
	}
	var b [utf8.UTFMax]byte
	n := utf8.EncodeRune(b[:], r)
	return segStart(norm.NFKC.Properties(b[:n])) && !isDrop(r)
}

// isDrop reports whether r is dropped before anything else: format
// characters (zero-width space and joiners, BOM, soft hyphen, bidi
// controls...), variation selectors and the other default-ignorable code
// points (Hangul fillers, combining grapheme joiner...).
func isDrop(r rune) bool {
	if r < 0xAD {
		return false
	}
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// Table flags, per BMP rune.
const (
	// fFast: the rune alone normalises to one letter (repl) or to
	// separators only (fSep).
	fFast uint8 = 1 << iota
	fSep
	// fBoundary: a normalisation segment starts at this rune whatever
	// comes before it (it is not dropped, not a spacing voiced mark, and
	// never combines backwards).
	fBoundary
)

type table struct {
	flags [0x10000]uint8
	repl  [0x10000]uint16
}

// boundaryAt reports whether a normalisation segment certainly starts at
// s[j].
func (t *table) boundaryAt(s string, j int) bool {
	c := s[j]
	if c < utf8.RuneSelf {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[j:])
	if r < 0x10000 {
		return t.flags[r]&fBoundary != 0
	}
	return segStart(norm.NFKC.PropertiesString(s[j:])) && !isDrop(r)
}

// segStart reports whether a rune with NFKC properties p never combines
// with what precedes it. BoundaryBefore alone is not enough for a
// compatibility decomposition that starts with a rune combining backwards:
// ㅘ (U+3158) decomposes to the vowel jamo U+116A, which composes with a
// leading consonant before it.
func segStart(p norm.Properties) bool {
	if !p.BoundaryBefore() {
		return false
	}
	d := p.Decomposition()
	return d == nil || norm.NFKC.Properties(d).BoundaryBefore()
}

var tables = sync.OnceValue(buildTables)

// buildTables runs every BMP rune through the slow pipeline once. Large
// blocks of ideographs and syllables that normalisation leaves alone are
// filled without it.
func buildTables() *table {
	t := new(table)
	sc := &scanner{caser: cases.Fold()}
	var b [utf8.UTFMax]byte
	for r := rune(0); r < 0x10000; r++ {
		if 0xD800 <= r && r <= 0xDFFF {
			continue
		}
		n := utf8.EncodeRune(b[:], r)
		p := norm.NFKC.Properties(b[:n])
		drop := isDrop(r)
		if segStart(p) && !drop && r != 0x309B && r != 0x309C {
			t.flags[r] |= fBoundary
		}
		if drop || unicode.IsMark(r) || r == 0x309B || r == 0x309C {
			continue
		}
		if inert(r) && unicode.IsLetter(r) && p.Decomposition() == nil {
			t.flags[r] |= fFast
			t.repl[r] = uint16(r)
			continue
		}
		// The rune must normalise the same after a letter as alone: a
		// decomposition that starts with a mark (U+0E33 THAI CHARACTER
		// SARA AM) would attach it to the letter before.
		sc.units = append(sc.units[:0], unit{r: 'x', kind: kindLetter})
		sc.slow(string(b[:n]), 0, n)
		after := sc.units[1:]
		switch {
		case len(after) == 1 && after[0].kind == kindLetter && after[0].r < 0x10000:
			t.flags[r] |= fFast
			t.repl[r] = uint16(after[0].r)
		case len(after) > 0 && allSeps(after):
			t.flags[r] |= fFast | fSep
		}
	}
	return t
}

// inert reports whether r is in a block of letters without case, kana or
// compatibility forms.
func inert(r rune) bool {
	return 0x3400 <= r && r <= 0x4DBF || // CJK Unified Ideographs Extension A
		0x4E00 <= r && r <= 0x9FFF || // CJK Unified Ideographs
		0xA000 <= r && r <= 0xA48C || // Yi Syllables
		0xAC00 <= r && r <= 0xD7A3 // Hangul Syllables
}

func allSeps(u []unit) bool {
	for _, x := range u {
		if x.kind != kindSep {
			return false
		}
	}
	return true
}
