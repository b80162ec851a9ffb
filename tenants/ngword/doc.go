// Package ngword finds a tenant's NG words in chat messages, however they
// are disguised, and maps what it finds back to the original text so that
// it can be rejected or masked.
//
// [Compile] turns an NG list (words, and an allow-list of harmless longer
// words) into a [Matcher]: one Aho-Corasick automaton over the normalised
// entries. [Matcher.Find] returns the byte ranges of the original text to
// act on, [Matcher.Contains] whether there is any, [Matcher.Mask] the
// text with those ranges masked, and [Matcher.Apply] a tenant's policy
// (reject with [kaiwa.CodeNGWord], or mask). [Normalize] is the
// normalisation both
// sides go through. The package is pure: it uses the standard library and
// golang.org/x/text only, and a Matcher is immutable and safe for
// concurrent use.
//
// # Normalisation
//
// Words and messages are normalised the same way, character by character,
// keeping for every normalised rune the bytes of the original text it came
// from:
//
//  1. Format characters are dropped: zero-width space, joiner and
//     non-joiner, BOM, soft hyphen, bidi controls, word joiner, tags
//     (general category Cf), variation selectors and the other
//     default-ignorable code points (Hangul fillers, combining grapheme
//     joiner). The spacing voiced marks ゛ and ゜ (U+309B, U+309C) become
//     the combining ones (U+3099, U+309A).
//  2. NFKC: full-width and half-width forms, mathematical and circled
//     letters, ligatures and squared words (㍻ → 平成) become plain
//     characters, and a kana followed by a combining voiced mark, the
//     half-width ﾞ or ﾟ, or (after step 1) ゛ or ゜ composes: は゛, ば
//     and ﾊﾞ all end as ば.
//  3. Full case folding (golang.org/x/text/cases): FUCK, FuCk and fuck
//     compare equal, and ß matches ss.
//  4. Katakana become hiragana (バカ, ﾊﾞｶ and ばか compare equal); ヷ ヸ ヹ
//     ヺ, which have no precomposed hiragana, become わ ゐ ゑ を followed by
//     a combining voiced mark. Where steps 3 and 4 changed something, NFKC
//     is applied again (until nothing changes), so that marks stay in
//     canonical order and the result is a fixed point.
//  5. Letters and digits are kept. Combining marks are kept on the letter
//     they follow and dropped where they follow nothing (at the start, or
//     after a separator). Everything else (spaces, punctuation, symbols,
//     emoji, controls, invalid bytes) is a separator.
//  6. The separator rule below decides which separators stay, as one
//     space each.
//
// Diacritics are significant: año does not match ano, since stripping
// them would turn ordinary words of some languages into NG words that no
// allow-list entry could rescue. A tenant that sees fück list it too.
// Confusable letters of other scripts (Cyrillic а for Latin a) and
// leetspeak (f4ck) are not unified either.
//
// # Separators
//
// Chat evades a list by spacing a word out (f.u.c.k, f u c k, ば か, ば・か),
// but ordinary sentences must not be glued together (this hit is not
// "shit", the pen is is not "penis"). The rule: a token is a maximal run of
// letters, digits and their marks. A run of separators between two tokens
// of exactly one letter each is removed; any other run between tokens
// becomes one space, and separators at the start and end are removed. So
// "f.u.c.k you" normalises to "fuck you", "f u ck" to "fu ck", and "行けば、
// かならず" to "行けば かならず", in which ばか is not found. (A run is also kept
// when the letter after it would combine with the one before it under
// NFKC, as Hangul jamo do, so that normalising twice changes nothing.)
//
// Matching is substring matching within and across the normalised tokens:
// "motherfucker" contains "fuck", and Japanese, written without spaces,
// matches wherever the characters appear. Because a kept space is part of
// the normalised text, a word matches across a word boundary only when
// its list entry has a space at that place ("son of a bitch").
//
// Stretched letters (fuuuuck, ばーか) are not collapsed: collapsing runs
// cannot tell "fuuuck" (fuck) from "asss" (ass) without per-word
// repetition in the automaton, and collapsing to one letter would break
// words with double letters. List the stretched forms that matter.
//
// # Allow-list
//
// An allow-list entry is a harmless longer word that contains an NG word
// (Scunthorpe for cunt, classic and assassin for ass, さばかん for ばか). An
// NG word matched wholly inside an occurrence of an allowed entry is not a
// hit; the same NG word elsewhere in the text still is. Allow-list entries
// are normalised like words.
//
// # Mapping back and masking
//
// [Matcher.Find] reports each hit as the bytes from the original character
// its first normalised rune came from to the one its last came from, so a
// range also covers the separators and invisible characters dropped
// inside the match ("f.u.c.k" is masked as "*******"). A character that
// normalises to several runes (㍻) is covered whole when any of them is
// matched. Overlapping and touching ranges are merged. [Matcher.Mask]
// replaces every rune inside a range with the mask rune and copies every
// other byte as it is.
//
// # Limits
//
// [Compile] refuses lists of more than [kaiwa.MaxNGWords] entries (words
// and allow-list together), entries longer than [kaiwa.MaxNGWordLen]
// characters, invalid UTF-8, and entries with no letter left after
// normalising, with [kaiwa.CodeBadRequest].
//
// # Performance
//
// Characters that normalise on their own (ASCII, kana, kanji, full-width
// forms...) go through a 192 KiB table built once per process (about 10 ms,
// on first use); only characters that can combine with their neighbours,
// or lie outside the Basic Multilingual Plane, take the full NFKC path.
// Scratch buffers are pooled, so [Matcher.Find] and [Matcher.Contains]
// allocate nothing on a clean text. BenchmarkMatch500x10k measures a
// 500-character mixed Japanese and English message against a 10,000-word
// list; docs/benchmarks.md has the figures.
package ngword
