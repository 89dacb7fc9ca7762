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
//! position (16 bytes a position for a secret of up to 63 characters).

use super::{Read, Text, Unit};

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

    /// Which of the text's bytes lie in a run that spells the start or the end of the secret of
    /// `units`, at least `min` of its characters (`min` at most its length), each character as
    /// written or encoded: the bytes inside one of [`Text::partial_echoes`]' runs.
    pub(crate) fn covered(&self, units: &[Unit], min: usize) -> Vec<bool> {
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
        let (mut firsts, mut edges, mut first_edge) = (Vec::new(), Vec::new(), Vec::new());
        for at in 0..=n {
            first_edge.push(edges.len());
            self.chars_at(at, &masks, &mut firsts, &mut edges);
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
        Text::new(text).covered(&units, partial_min(units.len()))
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
}
