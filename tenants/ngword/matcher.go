package ngword

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// Span is one match in the original text: the bytes text[Start:End]. Both
// ends fall on rune boundaries.
type Span struct{ Start, End int }

// Matcher finds a tenant's NG words in texts: one Aho-Corasick automaton
// over the normalised words and allow-list entries. Build one with
// [Compile].
//
// A Matcher is immutable and safe for concurrent use by any number of
// goroutines. The nil *Matcher is valid and matches nothing.
type Matcher struct {
	words int  // distinct NG words
	allow bool // whether there are allow-list entries

	// Runes map to symbols 1..n (0: in no entry, which resets the
	// automaton). BMP runes go through a page table; page 0 is empty.
	pageIdx [0x100]uint32
	pages   [][256]uint32
	wide    map[rune]uint32

	root   []uint32 // the root's transition for each symbol (0: none)
	states []state
	edges  []edge // the transitions of each state, by symbol
}

// state is a node of the automaton. ng and allow are the lengths, in
// normalised runes, of the longest NG word and allow-list entry ending
// here (0: none), its own or one reached by fail links.
type state struct {
	fail      uint32
	lo, hi    uint32 // its transitions are edges[lo:hi]
	ng, allow uint32
}

type edge struct{ sym, next uint32 }

// match is an occurrence in the normalised units: units[start:end].
type match struct{ start, end int }

// Compile builds the Matcher for an NG list: words to find and allow-list
// entries, harmless longer words that contain one (a word matched wholly
// inside an occurrence of an allowed entry is not a hit). Both lists are
// normalised with [Normalize]; duplicates are fine.
//
// It returns a [kaiwa.CodeBadRequest] error when the lists hold more than
// [kaiwa.MaxNGWords] entries together, or an entry is not valid UTF-8, is
// longer than [kaiwa.MaxNGWordLen] characters or is empty after
// normalising (only spaces, punctuation or invisible characters).
func Compile(words, allow []string) (*Matcher, error) {
	if len(words)+len(allow) > kaiwa.MaxNGWords {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "at most %d NG words and allow-list entries together", kaiwa.MaxNGWords)
	}
	sc := getScanner()
	defer putScanner(sc)
	b := newBuilder()
	for _, list := range []struct {
		what    string
		entries []string
		ng      bool
	}{{"NG word", words, true}, {"allow-list entry", allow, false}} {
		for _, w := range list.entries {
			p, err := entry(sc, list.what, w)
			if err != nil {
				return nil, err
			}
			b.add(p, list.ng)
		}
	}
	return b.build(), nil
}

// entry validates and normalises one list entry.
func entry(sc *scanner, what, w string) ([]rune, error) {
	if !utf8.ValidString(w) {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s %s is not valid UTF-8", what, show(w))
	}
	if utf8.RuneCountInString(w) > kaiwa.MaxNGWordLen {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s %s is longer than %d characters", what, show(w), kaiwa.MaxNGWordLen)
	}
	sc.scan(w)
	if len(sc.units) == 0 {
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s %s has no letters after normalising", what, show(w))
	}
	p := make([]rune, len(sc.units))
	for i, u := range sc.units {
		p[i] = u.r
	}
	return p, nil
}

// show quotes an entry for an error message, shortened when long.
func show(w string) string {
	const limit = 24
	if utf8.RuneCountInString(w) <= limit {
		return strconv.Quote(w)
	}
	i := 0
	for range limit {
		_, size := utf8.DecodeRuneInString(w[i:])
		i += size
	}
	return strconv.Quote(w[:i]) + "…"
}

// Len returns the number of distinct NG words after normalisation.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return m.words
}

// Find returns the parts of text that hold an NG word not covered by an
// allow-list entry, as byte ranges of text: in order, non-overlapping, with
// overlapping and touching matches merged. A range covers every original
// character the match was normalised from, including separators and
// invisible characters dropped between its letters. Find returns nil when
// text is clean, and then allocates nothing.
func (m *Matcher) Find(text string) []Span {
	if m == nil || m.words == 0 {
		return nil
	}
	sc := getScanner()
	defer putScanner(sc)
	sc.scan(text)
	if !m.run(sc, false) {
		return nil
	}
	sc.resolve()
	return sc.spans()
}

// Contains reports whether text holds an NG word not covered by an
// allow-list entry: whether [Matcher.Find] would return any span.
func (m *Matcher) Contains(text string) bool {
	if m == nil || m.words == 0 {
		return false
	}
	sc := getScanner()
	defer putScanner(sc)
	sc.scan(text)
	if !m.run(sc, true) {
		return false
	}
	sc.resolve()
	return len(sc.hits) > 0
}

// Mask returns text with every rune inside a span of [Matcher.Find]
// replaced by mask, one mask per original rune (an invalid byte counts as
// one rune), and whether anything was masked. Every byte outside the spans
// is kept exactly. An invalid mask rune is replaced by '*'.
func (m *Matcher) Mask(text string, mask rune) (string, bool) {
	spans := m.Find(text)
	if spans == nil {
		return text, false
	}
	if !utf8.ValidRune(mask) {
		mask = '*'
	}
	var b strings.Builder
	b.Grow(len(text) + 3*len(spans))
	prev := 0
	for _, sp := range spans {
		b.WriteString(text[prev:sp.Start])
		for k := sp.Start; k < sp.End; {
			_, size := utf8.DecodeRuneInString(text[k:sp.End])
			k += size
			b.WriteRune(mask)
		}
		prev = sp.End
	}
	b.WriteString(text[prev:])
	return b.String(), true
}

// MaskRune is the rune [Matcher.Apply] masks with.
const MaskRune = '*'

// Apply applies a tenant's NG policy to a message text. With [kaiwa.NGMask]
// it returns the text masked with [MaskRune]; with [kaiwa.NGReject], or
// any other policy, it returns a [kaiwa.CodeNGWord] error when the text
// holds an NG word, and the text unchanged otherwise. hit reports whether
// an NG word was found, for escalation and the event log.
func (m *Matcher) Apply(text, policy string) (out string, hit bool, err error) {
	if policy == kaiwa.NGMask {
		out, hit = m.Mask(text, MaskRune)
		return out, hit, nil
	}
	if m.Contains(text) {
		return "", true, kaiwa.Errorf(kaiwa.CodeNGWord, "the text contains a word on the NG list")
	}
	return text, false, nil
}

// sym returns r's symbol, 0 when r is in no entry.
func (m *Matcher) sym(r rune) uint32 {
	if r < 0x10000 {
		return m.pages[m.pageIdx[r>>8]][r&0xff]
	}
	return m.wide[r]
}

// next returns the transition of state s (not the root) on sym, 0 when
// there is none.
func (m *Matcher) next(s, sym uint32) uint32 {
	st := &m.states[s]
	e := m.edges[st.lo:st.hi]
	if len(e) <= 8 {
		for _, x := range e {
			if x.sym == sym {
				return x.next
			}
		}
		return 0
	}
	lo, hi := 0, len(e)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if e[mid].sym < sym {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(e) && e[lo].sym == sym {
		return e[lo].next
	}
	return 0
}

// run feeds sc.units through the automaton, collecting in sc.hits the
// longest NG word and in sc.allows the longest allow-list entry ending at
// each unit (a shorter one ending at the same place lies inside it). It
// reports whether any NG word was found; with stop and no allow-list it
// returns at the first.
func (m *Matcher) run(sc *scanner, stop bool) bool {
	sc.hits, sc.allows = sc.hits[:0], sc.allows[:0]
	s := uint32(0)
	for k := range sc.units {
		sym := m.sym(sc.units[k].r)
		if sym == 0 {
			s = 0
			continue
		}
		for {
			if s == 0 {
				s = m.root[sym]
				break
			}
			if nx := m.next(s, sym); nx != 0 {
				s = nx
				break
			}
			s = m.states[s].fail
		}
		st := &m.states[s]
		if st.ng != 0 {
			sc.hits = append(sc.hits, match{k + 1 - int(st.ng), k + 1})
			if stop && !m.allow {
				return true
			}
		}
		if st.allow != 0 {
			sc.allows = append(sc.allows, match{k + 1 - int(st.allow), k + 1})
		}
	}
	return len(sc.hits) > 0
}

// resolve drops from sc.hits every match that lies wholly inside an
// allow-list occurrence. Both lists are in order of their ends.
func (sc *scanner) resolve() {
	a := sc.allows
	if len(a) == 0 || len(sc.hits) == 0 {
		return
	}
	// a[i].start becomes the earliest start of a[i:], the allowed
	// occurrences that end at or after a[i].end.
	for i := len(a) - 2; i >= 0; i-- {
		a[i].start = min(a[i].start, a[i+1].start)
	}
	w, j := 0, 0
	for _, h := range sc.hits {
		for j < len(a) && a[j].end < h.end {
			j++
		}
		if j < len(a) && a[j].start <= h.start {
			continue
		}
		sc.hits[w] = h
		w++
	}
	sc.hits = sc.hits[:w]
}

// spans maps sc.hits back to the original text, merged.
func (sc *scanner) spans() []Span {
	if len(sc.hits) == 0 {
		return nil
	}
	out := make([]Span, 0, len(sc.hits))
	for _, h := range sc.hits {
		sp := Span{sc.units[h.start].start, sc.units[h.end-1].end}
		if sp.End > sp.Start {
			out = append(out, sp)
		}
	}
	slices.SortFunc(out, func(a, b Span) int { return cmp.Compare(a.Start, b.Start) })
	w := 0
	for _, sp := range out {
		if w > 0 && sp.Start <= out[w-1].End {
			out[w-1].End = max(out[w-1].End, sp.End)
			continue
		}
		out[w] = sp
		w++
	}
	if w == 0 {
		return nil
	}
	return out[:w]
}

// builder collects entries into a trie and turns it into a Matcher.
type builder struct {
	syms     map[rune]uint32
	children map[uint64]uint32 // state<<32 | symbol → child
	trie     []trieEdge
	depth    []uint32
	ng       []bool // the state ends an NG word
	allow    []bool // the state ends an allow-list entry
	words    int
}

type trieEdge struct{ parent, sym, child uint32 }

func newBuilder() *builder {
	return &builder{
		syms:     map[rune]uint32{},
		children: map[uint64]uint32{},
		depth:    []uint32{0},
		ng:       []bool{false},
		allow:    []bool{false},
	}
}

func (b *builder) add(p []rune, ng bool) {
	s := uint32(0)
	for _, r := range p {
		sym, ok := b.syms[r]
		if !ok {
			sym = uint32(len(b.syms) + 1)
			b.syms[r] = sym
		}
		key := uint64(s)<<32 | uint64(sym)
		c, ok := b.children[key]
		if !ok {
			c = uint32(len(b.depth))
			b.children[key] = c
			b.trie = append(b.trie, trieEdge{s, sym, c})
			b.depth = append(b.depth, b.depth[s]+1)
			b.ng = append(b.ng, false)
			b.allow = append(b.allow, false)
		}
		s = c
	}
	switch {
	case !ng:
		b.allow[s] = true
	case !b.ng[s]:
		b.ng[s] = true
		b.words++
	}
}

func (b *builder) build() *Matcher {
	m := &Matcher{words: b.words, pages: make([][256]uint32, 1)}
	for r, sym := range b.syms {
		if r >= 0x10000 {
			if m.wide == nil {
				m.wide = map[rune]uint32{}
			}
			m.wide[r] = sym
			continue
		}
		if m.pageIdx[r>>8] == 0 {
			m.pages = append(m.pages, [256]uint32{})
			m.pageIdx[r>>8] = uint32(len(m.pages) - 1)
		}
		m.pages[m.pageIdx[r>>8]][r&0xff] = sym
	}

	slices.SortFunc(b.trie, func(x, y trieEdge) int {
		if c := cmp.Compare(x.parent, y.parent); c != 0 {
			return c
		}
		return cmp.Compare(x.sym, y.sym)
	})
	m.states = make([]state, len(b.depth))
	m.edges = make([]edge, len(b.trie))
	for i, e := range b.trie {
		m.edges[i] = edge{e.sym, e.child}
	}
	for i := 0; i < len(b.trie); {
		p := b.trie[i].parent
		j := i
		for j < len(b.trie) && b.trie[j].parent == p {
			j++
		}
		m.states[p].lo, m.states[p].hi = uint32(i), uint32(j)
		i = j
	}
	m.root = make([]uint32, len(b.syms)+1)
	for _, e := range m.edges[m.states[0].lo:m.states[0].hi] {
		m.root[e.sym] = e.next
	}

	// Breadth first, so that a state's fail target (shallower) is done
	// before it.
	queue := make([]uint32, 0, len(m.states))
	for _, e := range m.edges[m.states[0].lo:m.states[0].hi] {
		queue = append(queue, e.next)
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		st := &m.states[s]
		f := &m.states[st.fail]
		st.ng, st.allow = f.ng, f.allow
		if b.ng[s] {
			st.ng = b.depth[s]
		}
		if b.allow[s] {
			st.allow = b.depth[s]
			m.allow = true
		}
		for _, e := range m.edges[st.lo:st.hi] {
			x := st.fail
			for {
				if x == 0 {
					m.states[e.next].fail = m.root[e.sym]
					break
				}
				if nx := m.next(x, e.sym); nx != 0 {
					m.states[e.next].fail = nx
					break
				}
				x = m.states[x].fail
			}
			queue = append(queue, e.next)
		}
	}
	return m
}
