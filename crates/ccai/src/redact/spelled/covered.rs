//! Which bytes of a text lie in a run that spells the start or the end of a secret: the union
//! of [`Text::partial_echoes`]' runs, found in time linear in the text for a secret of up to 63
//! characters and a 64th of [`Text::partial_echoes`]' for a longer one.
//!
//! Following runs one character of the secret at a time costs the text's length times the
//! secret's where many runs are alive at once: a secret of 4,000 backslashes against an answer
//! of 3,999 (each of which starts a run, read as written or two at a time as JSON's `\\`) took
//! a second a call. Here each position holds the set of how many characters of the secret may
//! have been read up to it, a bit each, and one pass forwards and one backwards over the text
//! move the sets along every spelling at once, 64 counts a machine word. It holds two sets a
//! position (16 bytes a position for a secret of up to 63 characters), so a long text is taken
//! in overlapping windows ([`covered`]): a 4 MiB answer held about 200 MB at once, and 1.3 GB
//! for a secret of 2,000 characters.

use super::{Read, Text, Unit};
use crate::redact::html;

/// The most bytes reading a character from a position looks at, that position's included, and
/// so the longest spelling of one character: a named HTML reference's `&`, up to
/// [`html::LONGEST`] letters and its `;`. (A numeric reference, a JSON surrogate pair and a
/// percent-encoded 4-byte character take 12.)
const READ_SPAN: usize = html::LONGEST + 2;

/// How many positions a window of [`covered`] moves on, at the least: a window's sets take
/// about 16 bytes a position per 64 characters of the secret, so this keeps a window's sets to
/// about 4 MiB for a secret of up to about 600 characters. A longer secret's windows move on by
/// 3 overlaps at the least (each window is then 4 overlaps long, 56 positions a character), so
/// their sets grow with the square of its length: about 14 bytes times it squared, 57 MB for
/// 2,000 characters.
const WINDOW_POSITIONS: usize = 256 * 1024;

/// Which of `bytes` lie in a run that spells the start or the end of the secret of `units`, at
/// least `min` of its characters (`min` at most its length), each character as written or
/// encoded: the bytes inside one of [`Text::partial_echoes`]' runs.
///
/// Taken window by window, each overlapping the next by more than the longest run plus what
/// reading its last character looks at, so that every run of the text lies whole in a window
/// where it reads as in the whole text; a window takes only the characters that end that far
/// before its cut, so none read differently for the cut ([`READ_SPAN`]). The union of the
/// windows' runs is then exactly the text's.
pub(crate) fn covered(bytes: &[u8], units: &[Unit], min: usize) -> Vec<bool> {
    let words = units.len() / 64 + 1;
    let overlap = (units.len() + 1).saturating_mul(READ_SPAN);
    let step = (WINDOW_POSITIONS / words).max(overlap.saturating_mul(3));
    covered_in_windows(bytes, units, min, step, overlap)
}

/// [`covered`], with windows starting every `step` positions, each `overlap` longer.
fn covered_in_windows(
    bytes: &[u8],
    units: &[Unit],
    min: usize,
    step: usize,
    overlap: usize,
) -> Vec<bool> {
    let n = bytes.len();
    let mut covered = vec![false; n];
    let mut start = 0usize;
    loop {
        let end = start.saturating_add(step).saturating_add(overlap).min(n);
        // The last window reads to the text's end, as the whole text does.
        let usable = if end == n {
            end - start
        } else {
            (end - start).saturating_sub(READ_SPAN)
        };
        let window = Text::new(&bytes[start..end]).covered_up_to(units, min, usable);
        for (into, from) in covered[start..end].iter_mut().zip(window) {
            *into |= from;
        }
        if end == n {
            return covered;
        }
        start += step;
    }
}

/// Sets of counts of a secret's characters (`0..=m`), one per position of a text, each
/// [`words`](Self::words) machine words long.
struct Rows {
    words: usize,
    bits: Vec<u64>,
}

impl Rows {
    /// `positions` sets, each `init`.
    fn new(positions: usize, init: &[u64]) -> Self {
        Rows {
            words: init.len(),
            bits: init.repeat(positions),
        }
    }

    fn row(&self, at: usize) -> &[u64] {
        &self.bits[at * self.words..(at + 1) * self.words]
    }

    /// The rows at `low` and `high` (`low < high`), the first to read, the second to write.
    fn pair(&mut self, low: usize, high: usize) -> (&[u64], &mut [u64]) {
        // Every spelling ends past where it starts.
        debug_assert!(low < high);
        let (before, after) = self.bits.split_at_mut(high * self.words);
        (
            &before[low * self.words..(low + 1) * self.words],
            &mut after[..self.words],
        )
    }

    /// The same as [`pair`](Self::pair), the first to write, the second to read.
    fn pair_mut_low(&mut self, low: usize, high: usize) -> (&mut [u64], &[u64]) {
        // Every spelling ends past where it starts.
        debug_assert!(low < high);
        let (before, after) = self.bits.split_at_mut(high * self.words);
        (
            &mut before[low * self.words..(low + 1) * self.words],
            &after[..self.words],
        )
    }
}

/// A set of counts `0..=m` with the counts in `counts` in it.
fn set_of(words: usize, counts: impl Iterator<Item = usize>) -> Vec<u64> {
    let mut set = vec![0u64; words];
    for count in counts {
        set[count / 64] |= 1 << (count % 64);
    }
    set
}

/// Bit `w` of `set` one count on (`j` becomes `j + 1`).
fn up(set: &[u64], w: usize) -> u64 {
    (set[w] << 1) | w.checked_sub(1).map_or(0, |before| set[before] >> 63)
}

/// Bit `w` of `set` one count back (`j + 1` becomes `j`).
fn down(set: &[u64], w: usize) -> u64 {
    (set[w] >> 1) | set.get(w + 1).map_or(0, |after| after << 63)
}

/// For each character of a secret, the set of counts `j` it is the character at (`secret[j]`).
struct Masks {
    words: usize,
    chars: Vec<char>,
    /// Each ASCII character's index in `chars` (looked up at every position of a text).
    ascii: [Option<usize>; 128],
    bits: Vec<u64>,
}

impl Masks {
    fn new(units: &[Unit], words: usize) -> Self {
        let mut chars: Vec<char> = units.iter().map(|u| u.c).collect();
        chars.sort_unstable();
        chars.dedup();
        let mut bits = vec![0u64; chars.len() * words];
        for (j, unit) in units.iter().enumerate() {
            if let Ok(i) = chars.binary_search(&unit.c) {
                bits[i * words + j / 64] |= 1 << (j % 64);
            }
        }
        let mut ascii = [None; 128];
        for (i, &c) in chars.iter().enumerate() {
            if let Some(slot) = ascii.get_mut(c as usize) {
                *slot = Some(i);
            }
        }
        Masks {
            words,
            chars,
            ascii,
            bits,
        }
    }

    /// Which of the secret's characters `c` is, `None` if it is none of them.
    fn index(&self, c: char) -> Option<usize> {
        match self.ascii.get(c as usize) {
            Some(&i) => i,
            None => self.chars.binary_search(&c).ok(),
        }
    }

    /// Where the character of [`index`](Self::index) `i` is in the secret.
    fn of(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }
}

impl Text<'_> {
    /// The bytes that each byte read at `at` (as written, or percent-encoded) stands for, and
    /// where it ends, into `out`.
    fn bytes_at(&self, at: usize, out: &mut Vec<(u8, usize)>) {
        if let Some(&byte) = self.bytes.get(at) {
            out.push((byte, at + 1));
        }
        let (Some(&from), Some(&to)) =
            (self.first_by_start.get(at), self.first_by_start.get(at + 1))
        else {
            return;
        };
        for &(_, end, what) in &self.by_start[from..to] {
            if let Read::Byte(byte) = what {
                out.push((byte, end));
            }
        }
    }

    /// Each character of `masks` that may be read from `at`, as where it ends and its
    /// [`Masks::index`], appended to `out`: whole (a JSON escape, an HTML reference) or as its
    /// UTF-8 bytes, each as written or percent-encoded, as [`Text::step`] reads them.
    fn chars_at(
        &self,
        at: usize,
        masks: &Masks,
        firsts: &mut Vec<(u8, usize)>,
        out: &mut Vec<(usize, usize)>,
    ) {
        let mut push = |end: usize, c: char| out.extend(masks.index(c).map(|i| (end, i)));
        if let (Some(&from), Some(&to)) =
            (self.first_by_start.get(at), self.first_by_start.get(at + 1))
        {
            for &(_, end, what) in &self.by_start[from..to] {
                if let Read::Char(c) = what {
                    push(end, c);
                }
            }
        }
        firsts.clear();
        self.bytes_at(at, firsts);
        for &(first, end) in firsts.iter() {
            let len = match first {
                0x00..=0x7f => {
                    push(end, char::from(first));
                    continue;
                }
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => continue,
            };
            // Every way of reading the rest of the character's bytes (at most 2³ of them).
            let mut ways = vec![(vec![first], end)];
            let mut next = Vec::new();
            for _ in 1..len {
                let mut longer = Vec::new();
                for (read, end) in &ways {
                    next.clear();
                    self.bytes_at(*end, &mut next);
                    for &(byte, after) in &next {
                        let mut read = read.clone();
                        read.push(byte);
                        longer.push((read, after));
                    }
                }
                ways = longer;
            }
            for (read, end) in ways {
                if let Some(c) = std::str::from_utf8(&read)
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    push(end, c);
                }
            }
        }
    }

    /// [`covered`] of this text, reading only the characters that end at or before `limit` (the
    /// rest of a window may read differently from the whole text, cut where it is).
    fn covered_up_to(&self, units: &[Unit], min: usize, limit: usize) -> Vec<bool> {
        let n = self.bytes.len();
        let m = units.len();
        let mut covered = vec![false; n];
        if m == 0 || min > m {
            return covered;
        }
        let words = m / 64 + 1;
        let masks = Masks::new(units, words);
        // The characters of the secret that may be read from each position, where each ends
        // and which it is: those from `at` are `edges[first_edge[at]..first_edge[at + 1]]`.
        let (mut firsts, mut found, mut edges, mut first_edge) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for at in 0..=n {
            first_edge.push(edges.len());
            self.chars_at(at, &masks, &mut firsts, &mut found);
            edges.extend(found.drain(..).filter(|&(end, _)| end <= limit));
        }
        first_edge.push(edges.len());
        let from_at = |at: usize| &edges[first_edge[at]..first_edge[at + 1]];
        // A run of the start reads characters 0..j for a j of at least `min`; one of the end,
        // j..m for a j of at most m - min: from any position, to any position.
        for (from, to) in [
            (set_of(words, 0..1), set_of(words, min..=m)),
            (set_of(words, 0..=m - min), set_of(words, m..=m)),
        ] {
            // How many characters may have been read up to each position, from a start; and
            // whether a run was read whole anywhere (else there is nothing to cover).
            let mut read = Rows::new(n + 1, &from);
            let mut ended = false;
            for at in 0..=n {
                for &(end, c) in from_at(at) {
                    let mask = masks.of(c);
                    let (here, there) = read.pair(at, end);
                    for w in 0..words {
                        let moved = up(here, w) & up(mask, w);
                        there[w] |= moved;
                        ended |= moved & to[w] != 0;
                    }
                }
            }
            if !ended {
                continue;
            }
            // How many characters read at each position leave the rest to an end.
            let mut left = Rows::new(n + 1, &to);
            for at in (0..=n).rev() {
                for &(end, c) in from_at(at) {
                    let mask = masks.of(c);
                    let (here, there) = left.pair_mut_low(at, end);
                    let before = read.row(at);
                    let mut on_a_run = false;
                    for w in 0..words {
                        let next = down(there, w) & mask[w];
                        here[w] |= next;
                        on_a_run |= before[w] & next != 0;
                    }
                    // A character read from `at` on a run: its bytes are covered.
                    if on_a_run {
                        covered[at..end].iter_mut().for_each(|b| *b = true);
                    }
                }
            }
        }
        covered
    }
}

#[cfg(test)]
mod tests {
    use super::super::{partial_min, units};
    use super::*;

    /// The bytes inside one of [`Text::partial_echoes`]' runs.
    fn in_partial_echoes(text: &[u8], secret: &str) -> Vec<bool> {
        let units = units(secret);
        let mut covered = vec![false; text.len()];
        for (start, end) in Text::new(text).partial_echoes(&units, partial_min(units.len())) {
            covered[start..end].iter_mut().for_each(|b| *b = true);
        }
        covered
    }

    fn covered(text: &[u8], secret: &str) -> Vec<bool> {
        let units = units(secret);
        super::covered(text, &units, partial_min(units.len()))
    }

    /// `c` written one of the ways the redaction reads, chosen by `way`.
    fn spelled(c: char, way: usize) -> String {
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        let named = match c {
            '\\' => "&bsol;",
            '&' => "&amp;",
            '\u{e9}' => "&eacute;",
            _ => "&bogus;",
        };
        match way % 7 {
            0 | 1 => c.to_string(),
            2 => bytes.iter().map(|b| format!("%{b:02X}")).collect(),
            3 => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("\\u{u:04x}"))
                .collect(),
            4 => format!("&#{};", u32::from(c)),
            5 if c == '\\' => "\\\\".to_owned(),
            5 => format!("&#x{:X}", u32::from(c)),
            _ => named.to_owned(),
        }
    }

    #[test]
    fn the_bytes_covered_are_those_of_partial_echoes_runs() {
        // What goes between runs: pieces that resemble or run on into a spelling.
        const NOISE: [&str; 12] = [
            "\\", "%", "%5", "&", "&#", "a", "b", "x", " ", "+", ";", "\u{e9}",
        ];
        const SECRETS: [&str; 6] = [
            r"\\\\\\\\\\",
            "abababab",
            "a\\b\\a\\b\\a",
            "ab\u{e9}ba\u{e9}ab",
            "a&b%c a&b%c",
            "\u{1f600}a\u{1f600}b\u{1f600}a",
        ];
        // xorshift64: the same cases on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut seen = 0;
        for case in 0..3000 {
            let secret = SECRETS[case % SECRETS.len()];
            let chars: Vec<char> = secret.chars().collect();
            let mut text = String::new();
            for _ in 0..1 + next(4) {
                text.extend((0..next(4)).map(|_| NOISE[next(NOISE.len())]));
                // A run of the secret's start or end, or a piece of its middle, any length.
                let (a, b) = (next(chars.len() + 1), next(chars.len() + 1));
                let run = match next(3) {
                    0 => &chars[..a.max(b)],
                    1 => &chars[a.min(b)..],
                    _ => &chars[a.min(b)..a.max(b)],
                };
                let way = next(8);
                for &c in run {
                    // One way for the whole run, or each character its own.
                    text.push_str(&spelled(c, if way == 7 { next(7) } else { way }));
                }
            }
            let expected = in_partial_echoes(text.as_bytes(), secret);
            seen += usize::from(expected.contains(&true));
            assert_eq!(
                covered(text.as_bytes(), secret),
                expected,
                "{secret:?} in {text:?}"
            );
        }
        // The cases are worth the name: many have a run, many none.
        assert!((500..2500).contains(&seen), "{seen} of 3000 with a run");
    }

    #[test]
    fn a_secret_longer_than_a_word_of_counts_is_followed_across_words() {
        let secret = format!("{}x", "\\".repeat(200));
        // Its start, cut short at 150 characters, spelled two ways in turn.
        let start = "\\\\\\".repeat(50) + "%5C&bsol;".repeat(25).as_str();
        let text = format!("<{start}>");
        let covered = covered(text.as_bytes(), &secret);
        assert_eq!(covered, in_partial_echoes(text.as_bytes(), &secret));
        assert!(!covered[0] && covered[1..text.len() - 1].iter().all(|&b| b));
        assert!(!covered[text.len() - 1]);
    }

    /// A noisy text of `pieces` runs of `secret` (each spelled one way or mixed), with
    /// spellings that run on or are cut short between them, from `seed`.
    fn noisy_text(secret: &str, pieces: usize, seed: u64) -> String {
        const NOISE: [&str; 14] = [
            "\\",
            "%",
            "%5",
            "&",
            "&#",
            "&#x0000004",
            "\\ud83d",
            "a",
            "x",
            " ",
            ";",
            "&bsol",
            "\u{e9}",
            "&thetasym;",
        ];
        let mut state = seed | 1;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let chars: Vec<char> = secret.chars().collect();
        let mut text = String::new();
        for _ in 0..pieces {
            text.extend((0..next(6)).map(|_| NOISE[next(NOISE.len())]));
            let (a, b) = (next(chars.len() + 1), next(chars.len() + 1));
            let run = if next(2) == 0 {
                &chars[..a.max(b)]
            } else {
                &chars[a.min(b)..]
            };
            let way = next(8);
            for &c in run {
                text.push_str(&spelled(c, if way == 7 { next(7) } else { way }));
            }
        }
        text
    }

    #[test]
    fn windows_cover_what_the_whole_text_covers() {
        const SECRETS: [&str; 4] = [
            r"\\\\\\",
            "a\\b\\a\\b\\a",
            "ab\u{e9}ba\u{e9}ab",
            "\u{1f600}a\u{1f600}b\u{1f600}a",
        ];
        let mut runs = 0;
        for seed in 0..60u64 {
            let secret = SECRETS[seed as usize % SECRETS.len()];
            let text = noisy_text(secret, 40, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let bytes = text.as_bytes();
            let units = units(secret);
            let min = partial_min(units.len());
            let whole = Text::new(bytes).covered_up_to(&units, min, bytes.len());
            runs += usize::from(whole.contains(&true));
            let overlap = (units.len() + 1) * READ_SPAN;
            // Texts several windows long, windows as short as one position apart.
            assert!(bytes.len() > 2 * overlap, "{} bytes", bytes.len());
            for step in [1, 5, 37, overlap / 2, overlap] {
                assert_eq!(
                    covered_in_windows(bytes, &units, min, step, overlap),
                    whole,
                    "step {step}, {secret:?} in {text:?}"
                );
            }
        }
        assert!(runs > 50, "{runs} of 60 texts with a run");
    }

    #[test]
    fn a_text_cut_short_reads_the_same_up_to_the_read_span_before_its_end() {
        for seed in 0..20u64 {
            let text = noisy_text("\\&\u{e9}\u{1f600}x", 30, seed.wrapping_mul(0x2545_f491));
            let bytes = text.as_bytes();
            let whole = Text::new(bytes);
            for cut in 0..bytes.len() {
                let short = Text::new(&bytes[..cut]);
                for at in 0..cut.saturating_sub(READ_SPAN - 1) {
                    let spellings = |text: &Text<'_>| {
                        text.by_start[text.first_by_start[at]..text.first_by_start[at + 1]].to_vec()
                    };
                    assert!(
                        spellings(&short) == spellings(&whole),
                        "at {at} of {text:?} cut at {cut}"
                    );
                }
            }
        }
    }
    /// `c` in a spelling of the longest the readers accept, or one that may run on into what
    /// follows (digits without their `;`), chosen by `way`.
    fn spelled_long(c: char, way: usize) -> Vec<u8> {
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        let named = crate::redact::html_names::NAMES
            .iter()
            .find(|(_, named)| *named == c)
            .map(|(name, _)| format!("&{name};"));
        let text = match way % 9 {
            0 => c.to_string(),
            1 => bytes.iter().map(|b| format!("%{b:02X}")).collect(),
            2 => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("\\u{u:04X}"))
                .collect(),
            3 => format!("&#x{:08x};", u32::from(c)),
            4 => format!("&#{:08}", u32::from(c)),
            5 => format!("&#X{:08X}", u32::from(c)),
            6 => format!("&#{:08};", u32::from(c)),
            7 => named.unwrap_or_else(|| c.to_string()),
            // Byte by byte, each as written or percent-encoded in turn.
            _ => {
                let mut mixed = Vec::new();
                for (i, b) in bytes.iter().enumerate() {
                    if i % 2 == 0 {
                        mixed.extend(format!("%{b:02x}").bytes());
                    } else {
                        mixed.push(*b);
                    }
                }
                return mixed;
            }
        };
        text.into_bytes()
    }

    /// Windows against the whole text where a cut can hurt most: characters in spellings of 11
    /// and 12 bytes (zero-padded references, surrogate pairs, percent-encoded 4-byte
    /// characters), references without `;` that a following digit would lengthen, lone
    /// surrogates read as U+FFFD, half spellings and invalid UTF-8 around the runs, secrets of
    /// one character to more than a word of counts (65 and more), every `min`, and windows
    /// 1 to 97 positions apart.
    #[test]
    fn windows_cover_what_the_whole_text_covers_for_the_longest_spellings() {
        const POOL: [char; 20] = [
            'a',
            'F',
            '1',
            '0',
            ';',
            '#',
            'x',
            '&',
            '%',
            '\\',
            'u',
            '\u{e9}',
            '\u{3d1}',
            '\u{20ac}',
            '\u{2329}',
            '\u{27e8}',
            '\u{fffd}',
            '\u{1f600}',
            '\u{10ffff}',
            ' ',
        ];
        const NOISE: [&[u8]; 24] = [
            b"\\",
            b"\\u",
            b"\\ud83d",
            b"\\ud83d\\u",
            b"\\ude00",
            b"\\uDBFF",
            b"%",
            b"%F0",
            b"%F0%9F",
            b"%9",
            b"&",
            b"&#",
            b"&#x",
            b"&#x0000",
            b"&#0000000",
            b"&thetasy",
            b"&theta",
            b"0",
            b"9",
            b";",
            b"\xff",
            b"\xf0\x9f",
            b"\x80",
            b"\xc3",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let (mut texts, mut with_runs) = (0, 0);
        for case in 0..90 {
            // Mostly short secrets, each with a small alphabet so runs repeat; every sixth longer
            // than a word of counts.
            let m = if case % 6 == 5 {
                65 + next(40)
            } else {
                1 + next(7)
            };
            let alphabet: Vec<char> = (0..1 + next(4)).map(|_| POOL[next(POOL.len())]).collect();
            let secret: String = (0..m).map(|_| alphabet[next(alphabet.len())]).collect();
            let chars: Vec<char> = secret.chars().collect();
            let units = units(&secret);
            let min = 1 + next(m);
            let overlap = (m + 1) * READ_SPAN;
            let mut text = Vec::new();
            while text.len() < 3 * overlap {
                for _ in 0..next(4) {
                    text.extend_from_slice(NOISE[next(NOISE.len())]);
                }
                let (a, b) = (next(m + 1), next(m + 1));
                let run = match next(3) {
                    0 => &chars[..a.max(b)],
                    1 => &chars[a.min(b)..],
                    _ => &chars[a.min(b)..a.max(b)],
                };
                let way = next(10);
                for &c in run {
                    text.extend(spelled_long(c, if way == 9 { next(9) } else { way }));
                }
            }
            let whole = Text::new(&text).covered_up_to(&units, min, text.len());
            texts += 1;
            with_runs += usize::from(whole.contains(&true));
            // Short secrets: windows as close as can be; long ones cost more a window.
            let steps = if m < 64 {
                vec![1, 2, 1 + next(12), 13 + next(85)]
            } else {
                vec![31 + next(67), overlap / 2 + next(overlap / 2)]
            };
            for step in steps {
                assert!(
                    covered_in_windows(&text, &units, min, step, overlap) == whole,
                    "step {step}, min {min}, {secret:?} in {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(
            with_runs * 2 > texts,
            "{with_runs} of {texts} texts with a run"
        );
        // No text, no secret.
        assert!(covered_in_windows(b"", &units("abcd"), 1, 1, 5 * READ_SPAN).is_empty());
        assert_eq!(
            covered_in_windows(b"abcd", &units(""), 0, 1, READ_SPAN),
            [false; 4]
        );
    }
}
