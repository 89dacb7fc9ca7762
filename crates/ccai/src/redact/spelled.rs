//! Where a text spells a secret, or the start or the end of one, each character as written or
//! in a spelling read by [`super::percent`], [`super::json`] or [`super::html`], mixed freely.
//!
//! Some spellings start with the character itself (`&amp;` for `&`, `%25` for `%`, `\\` for
//! `\`), so one character can be read in several ways from one position and every way is
//! followed. The positions reached are followed for all starting positions at once, one
//! character of the secret at a time, each kept with the start furthest from it (any echo
//! through it from a nearer start lies inside that one's): at most a secret's length of steps
//! over the text's positions, O(n·m), where following each start alone (or each way) took
//! minutes for a long run of backslashes.

use super::{html, json, percent};

#[cfg_attr(not(feature = "client"), allow(dead_code))] // the management API client's
mod covered;
#[cfg_attr(not(feature = "client"), allow(unused_imports))]
pub(crate) use covered::covered;

/// The fewest characters of a secret's start or end that [`Text::partial_echoes`] takes for
/// an echo of it: 8, or more than half of a secret shorter than 16, and never fewer than 4. Shorter
/// runs stay, so that a fixed prefix (`sk_`), a provider's customary last four characters
/// (`…Kp8mW` is five) or a short word the secret happens to start with are not redacted; a
/// longer word that a secret starts or ends with is (`password` for `password123`), which hides
/// a word and never shows a secret.
pub(crate) fn partial_min(secret_chars: usize) -> usize {
    (secret_chars / 2 + 1).clamp(4, 8)
}

/// A character of a secret: whole, for the spellings that write it whole, and its UTF-8
/// bytes, for those that write it byte by byte.
pub(crate) struct Unit {
    c: char,
    utf8: Vec<u8>,
}

/// `secret`'s characters, worked out once rather than at each position of a text.
pub(crate) fn units(secret: &str) -> Vec<Unit> {
    let mut utf8 = [0u8; 4];
    secret
        .chars()
        .map(|c| Unit {
            c,
            utf8: c.encode_utf8(&mut utf8).as_bytes().to_vec(),
        })
        .collect()
}

/// What an encoded spelling stands for: a byte ([`percent::byte_at`]) or a whole character
/// ([`json::escape_at`], [`html::references_at`]).
#[derive(Clone, Copy, PartialEq)]
enum Read {
    Byte(u8),
    Char(char),
}

/// An encoded spelling in a text: where it starts, where it ends, what it stands for.
type Spelling = (usize, usize, Read);

/// A text's encoded spellings, read once, in order of start and again in order of end (to
/// follow a secret backwards, for its end), each list with where each position's part begins.
pub(crate) struct Text<'a> {
    bytes: &'a [u8],
    by_start: Vec<Spelling>,
    first_by_start: Vec<usize>,
    by_end: Vec<Spelling>,
    first_by_end: Vec<usize>,
}

/// For each position `0..=len` (and one more), where its spellings begin in `list`, sorted by
/// `key`.
fn firsts(list: &[Spelling], len: usize, key: fn(&Spelling) -> usize) -> Vec<usize> {
    let mut firsts = Vec::with_capacity(len + 2);
    let mut i = 0;
    for at in 0..len + 2 {
        while i < list.len() && key(&list[i]) < at {
            i += 1;
        }
        firsts.push(i);
    }
    firsts
}

/// Buffers one step of [`Text::step`] reuses: the furthest start found for each position
/// (`usize::MAX` for none) and the positions found.
struct Scratch {
    origin: Vec<usize>,
    found: Vec<usize>,
    here: Vec<usize>,
    there: Vec<usize>,
}

impl<'a> Text<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let mut by_start = Vec::new();
        for at in 0..bytes.len() {
            if let Some((byte, end)) = percent::byte_at(bytes, at) {
                by_start.push((at, end, Read::Byte(byte)));
            }
            if let Some((c, end)) = json::escape_at(bytes, at) {
                by_start.push((at, end, Read::Char(c)));
            }
            for (c, end) in html::references_at(bytes, at).into_iter().flatten() {
                by_start.push((at, end, Read::Char(c)));
            }
        }
        let mut by_end = by_start.clone();
        by_end.sort_by_key(|&(_, end, _)| end);
        Text {
            bytes,
            first_by_start: firsts(&by_start, bytes.len(), |e| e.0),
            by_start,
            first_by_end: firsts(&by_end, bytes.len(), |e| e.1),
            by_end,
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            origin: vec![usize::MAX; self.bytes.len() + 2],
            found: Vec::new(),
            here: Vec::new(),
            there: Vec::new(),
        }
    }

    /// The positions a spelling of `read` starting at `at` ends at (forwards), or one ending at
    /// `at` starts at (backwards): as written (a byte) or encoded.
    fn after(&self, at: usize, read: Read, forwards: bool, out: &mut Vec<usize>) {
        if let Read::Byte(byte) = read {
            let written = if forwards {
                self.bytes.get(at).map(|b| (*b, at + 1))
            } else {
                at.checked_sub(1).map(|before| (self.bytes[before], before))
            };
            if let Some((_, next)) = written.filter(|(b, _)| *b == byte) {
                out.push(next);
            }
        }
        let (list, firsts) = if forwards {
            (&self.by_start, &self.first_by_start)
        } else {
            (&self.by_end, &self.first_by_end)
        };
        let (Some(&from), Some(&to)) = (firsts.get(at), firsts.get(at + 1)) else {
            return;
        };
        for &(start, end, what) in &list[from..to] {
            if what == read {
                out.push(if forwards { end } else { start });
            }
        }
    }

    /// Whether `unit` may be read from `at` (forwards) or up to `at` (backwards): its first
    /// (last) byte written there, or an encoded spelling starting (ending) there.
    #[cfg_attr(not(feature = "inbox"), allow(dead_code))] // the forwarding dispatcher's
    fn may_start(&self, at: usize, unit: &Unit, forwards: bool) -> bool {
        let (written, firsts) = if forwards {
            (
                self.bytes.get(at).zip(unit.utf8.first()),
                &self.first_by_start,
            )
        } else {
            let before = at.checked_sub(1).and_then(|b| self.bytes.get(b));
            (before.zip(unit.utf8.last()), &self.first_by_end)
        };
        written.is_some_and(|(b, u)| b == u)
            || matches!((firsts.get(at), firsts.get(at + 1)), (Some(from), Some(to)) if from < to)
    }

    /// The states (position, start) one character of a secret on from `states`, into `next`,
    /// sorted by position, each position once with its furthest start (the least forwards, the
    /// greatest backwards).
    fn step(
        &self,
        states: &[(usize, usize)],
        unit: &Unit,
        forwards: bool,
        scratch: &mut Scratch,
        next: &mut Vec<(usize, usize)>,
    ) {
        let Scratch {
            origin,
            found,
            here,
            there,
        } = scratch;
        let len = unit.utf8.len();
        for &(at, start) in states {
            // Byte by byte, each as written or percent-encoded; or the whole character.
            here.clear();
            here.push(at);
            for k in 0..len {
                let byte = unit.utf8[if forwards { k } else { len - 1 - k }];
                there.clear();
                for &i in here.iter() {
                    self.after(i, Read::Byte(byte), forwards, there);
                }
                std::mem::swap(here, there);
            }
            self.after(at, Read::Char(unit.c), forwards, here);
            for &end in here.iter() {
                let slot = &mut origin[end];
                if *slot == usize::MAX {
                    found.push(end);
                    *slot = start;
                } else if forwards {
                    *slot = (*slot).min(start);
                } else {
                    *slot = (*slot).max(start);
                }
            }
        }
        // Found nearly in order: each step moves a few bytes on from a state in order.
        found.sort_unstable();
        next.clear();
        for &end in found.iter() {
            next.push((end, origin[end]));
            origin[end] = usize::MAX;
        }
        found.clear();
    }

    /// Each echo of the whole secret of `units` that starts at one of `starts`, as `(start,
    /// end)`: for each end, the furthest start.
    #[cfg_attr(not(feature = "inbox"), allow(dead_code))] // the forwarding dispatcher's
    pub(crate) fn echoes(
        &self,
        units: &[Unit],
        starts: std::ops::Range<usize>,
    ) -> Vec<(usize, usize)> {
        let mut states: Vec<(usize, usize)> = starts.map(|at| (at, at)).collect();
        let (mut scratch, mut next) = (self.scratch(), Vec::new());
        for unit in units {
            if states.is_empty() {
                break;
            }
            self.step(&states, unit, true, &mut scratch, &mut next);
            std::mem::swap(&mut states, &mut next);
        }
        states
            .into_iter()
            .map(|(end, start)| (start, end))
            .collect()
    }

    /// Each run of the text that spells the start or the end of the secret of `units`, at
    /// least `min` of its characters, as `(start, end)`: the furthest end of the runs from each
    /// start (the others lie inside it).
    #[cfg_attr(not(feature = "inbox"), allow(dead_code))] // the forwarding dispatcher's
    pub(crate) fn partial_echoes(&self, units: &[Unit], min: usize) -> Vec<(usize, usize)> {
        let mut furthest: Vec<Option<usize>> = vec![None; self.bytes.len() + 1];
        let mut run = |start: usize, end: usize| {
            if let Some(slot) = furthest.get_mut(start) {
                *slot = (*slot).max(Some(end));
            }
        };
        // Only the positions where the first character followed can be read, written or
        // encoded: following every position of an ordinary body cost twice the old look.
        let everywhere = |unit: Option<&Unit>, forwards: bool| {
            (0..=self.bytes.len())
                .filter(|&at| unit.is_some_and(|unit| self.may_start(at, unit, forwards)))
                .map(|at| (at, at))
                .collect::<Vec<_>>()
        };
        // The start, read forwards from every position; the end, backwards.
        let (mut scratch, mut next) = (self.scratch(), Vec::new());
        let mut states = everywhere(units.first(), true);
        for (done, unit) in units.iter().enumerate() {
            if states.is_empty() {
                break;
            }
            self.step(&states, unit, true, &mut scratch, &mut next);
            std::mem::swap(&mut states, &mut next);
            if done + 1 >= min {
                states.iter().for_each(|&(end, start)| run(start, end));
            }
        }
        let mut states = everywhere(units.last(), false);
        for (done, unit) in units.iter().rev().enumerate() {
            if states.is_empty() {
                break;
            }
            self.step(&states, unit, false, &mut scratch, &mut next);
            std::mem::swap(&mut states, &mut next);
            if done + 1 >= min {
                states.iter().for_each(|&(start, end)| run(start, end));
            }
        }
        furthest
            .into_iter()
            .enumerate()
            .filter_map(|(start, end)| Some((start, end?)))
            .collect()
    }
}
