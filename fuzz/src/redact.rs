//! The `redact` target: the excerpt of a forward target's answer
//! ([`HttpForward::redact_echoes`]) shows no secret the request carried.
//!
//! From the input: one to four secrets (8 to 64 characters of [`ALPHABET`]), each carried by
//! the signature, the URL's password, a query value, a path token or a header, and an answer
//! that echoes them (and the other forms the forward redacts: the Basic token, `user:password`,
//! the URL's raw escapes) among the input's bytes, each character verbatim, JSON-escaped,
//! percent-encoded or as an HTML reference, whole or cut short, some across the excerpt's cut,
//! some overlapping (a secret that starts with the end of another, echoed on from it).
//! Checked, on that answer and on its noise alone (after checking that the forward takes each
//! text this target takes for a secret for one):
//!
//! 1. the excerpt is the first [`EXCERPT`] bytes of the answer at most, with `[REDACTED]` in
//!    place of some of them ([`assert_bounded`]);
//! 2. it spells no secret, nor a run of a secret's start or end of [`partial_min`] characters,
//!    verbatim or decoded ([`assert_no_secret`]); an echo or run that the cut splits leaves the
//!    excerpt ending in `[REDACTED]`;
//! 3. an answer that cannot spell any of it ([`may_spell`]) comes back as it was.

use ccai::inbox::HttpForward;

use crate::{fnv, Outcome};

/// The most bytes of an answer the excerpt keeps (`excerpt::EXCERPT` in the library).
const EXCERPT: usize = 512;

/// How many characters past the cut a run cut short that the cut splits is followed
/// (`excerpt::ACROSS` in the library).
const ACROSS: usize = 256;

/// What an echo is replaced with.
const MARKER: &str = "[REDACTED]";

/// What secrets are made of: characters with encodings worth following (`%`, `&`, `;`, `"`
/// are what the encodings are written with; three letters past ASCII: one of two bytes, one
/// HTML 4 names, one past the Basic Multilingual Plane, which JSON writes as a surrogate pair),
/// and no `[` or `]`, so that the marker cannot spell a secret.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+=_-.:@%&;\"\u{e9}\u{3bb}\u{1d49c}";

/// The user name the URL's credentials carry a password with.
const USER: &str = "fuzz";

/// The named references the spellings write (a subset of what the library reads).
const NAMES: &[(char, &str)] = &[
    ('&', "amp"),
    ('"', "quot"),
    ('/', "sol"),
    ('_', "lowbar"),
    (':', "colon"),
    (';', "semi"),
    ('=', "equals"),
    ('+', "plus"),
    ('%', "percnt"),
    ('@', "commat"),
    ('.', "period"),
    ('\u{e9}', "eacute"),
    ('\u{3bb}', "lambda"),
];

/// The fewest characters of a secret's start or end the redaction takes for an echo of it
/// (`redact::spelled::partial_min` in the library).
fn partial_min(chars: usize) -> usize {
    (chars / 2 + 1).clamp(4, 8)
}

/// The input, read a byte at a time; zeros once it is used up.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.bytes.len());
        let end = (start + n).min(self.bytes.len());
        self.at = start + n;
        &self.bytes[start..end]
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// Where a secret travels with the request.
#[derive(Clone, Copy, PartialEq)]
enum Carrier {
    Signature,
    Password,
    Query,
    Path,
    Header,
}

/// Every byte but ASCII letters and digits percent-encoded, hex digits upper or lower case.
fn percent_encoded(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|b| match (b.is_ascii_alphanumeric(), upper) {
            (true, _) => char::from(b).to_string(),
            (false, true) => format!("%{b:02X}"),
            (false, false) => format!("%{b:02x}"),
        })
        .collect()
}

/// A path segment the forward takes for a token (`path_tokens::is_token` in the library).
fn is_path_token(secret: &str) -> bool {
    let chars = secret.chars().count();
    chars >= 20
        || (chars >= 8
            && secret
                .chars()
                .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()))
}

/// Standard base64, padded: the `Authorization: Basic` token of the URL's credentials.
fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(DIGITS[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The forward, the signature, and every text the forward redacts (as `HttpForward::secrets`
/// lists them: the signature; the Basic token, `user:password` and the password, decoded and as
/// the URL writes it; each query value and path token, decoded and as written; header values).
struct Setup {
    forward: HttpForward,
    signature: Option<String>,
    secrets: Vec<String>,
    /// Which [`Carrier`]s carry a secret, a bit each: part of the target's outcome.
    carriers: u64,
}

/// One to four secrets from `input`, and a forward that carries them.
fn setup(input: &mut Input) -> Setup {
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    let (mut signature, mut password) = (None, None);
    let (mut query, mut path, mut headers) = (Vec::new(), Vec::new(), Vec::new());
    let mut secrets = Vec::new();
    let mut carriers = 0;
    let mut previous: Option<String> = None;
    for _ in 0..=input.below(4) {
        let len = 8 + input.below(57);
        let mut secret: String = (0..len)
            .map(|_| alphabet[input.below(alphabet.len())])
            .collect();
        // Now and then one starts with the end of the one before, so that their echoes overlap.
        if let Some(previous) = previous.filter(|_| input.byte() & 3 == 0) {
            let chars: Vec<char> = previous.chars().collect();
            let shared = (4 + input.below(5)).min(chars.len());
            let start: String = chars[chars.len() - shared..].iter().collect();
            secret = start.chars().chain(secret.chars()).take(64).collect();
        }
        previous = Some(secret.clone());
        let upper = input.byte() & 1 == 0;
        let carrier = match input.below(5) {
            0 if signature.is_none() => Carrier::Signature,
            1 if password.is_none() => Carrier::Password,
            3 if is_path_token(&secret) => Carrier::Path,
            4 if secret.is_ascii() => Carrier::Header,
            _ => Carrier::Query,
        };
        carriers |= 1 << carrier as u64;
        let raw = percent_encoded(&secret, upper);
        match carrier {
            Carrier::Signature => signature = Some(secret.clone()),
            Carrier::Password => {
                let userinfo = format!("{USER}:{secret}");
                secrets.extend([base64(userinfo.as_bytes()), userinfo, raw.clone()]);
                password = Some(raw);
            }
            Carrier::Query => {
                query.push(format!("q{}={raw}", query.len()));
                secrets.push(raw);
            }
            Carrier::Path => {
                path.push(raw.clone());
                secrets.push(raw);
            }
            Carrier::Header => headers.push(secret.clone()),
        }
        secrets.push(secret);
    }
    let credentials = password.map_or(String::new(), |p| format!("{USER}:{p}@"));
    let mut url = format!("https://{credentials}hooks.example.com/services/T000");
    for token in &path {
        url.push('/');
        url.push_str(token);
    }
    url.push_str("/in");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let mut forward = HttpForward::new(&url)
        .unwrap_or_else(|e| panic!("the fuzz target built a URL the forward refuses ({e}): {url}"));
    for (i, value) in headers.iter().enumerate() {
        forward = forward
            .header(&format!("X-Fuzz-Token-{i}"), value)
            .unwrap_or_else(|e| panic!("the forward refuses the header ({e}): {value}"));
    }
    secrets.sort();
    secrets.dedup();
    Setup {
        forward,
        signature,
        secrets,
        carriers,
    }
}

/// `chars` spelled in `style` (4: each character in its own), into `out`. A numeric reference
/// goes without its `;` now and then, as browsers read it, where what follows can neither run
/// on into its digits nor be read as its `;`.
fn spell_all(chars: &[char], style: usize, input: &mut Input, out: &mut Vec<u8>) {
    let spelled: Vec<String> = chars.iter().map(|&c| spell(c, style, input)).collect();
    for (i, spelling) in spelled.iter().enumerate() {
        let next = spelled.get(i + 1).and_then(|next| next.bytes().next());
        let open = spelling.starts_with("&#")
            && next.is_some_and(|b| !b.is_ascii_alphanumeric() && b != b';')
            && input.byte() & 1 == 0;
        let spelling = if open {
            spelling.trim_end_matches(';')
        } else {
            spelling
        };
        out.extend_from_slice(spelling.as_bytes());
    }
}

/// How one character of a secret is written.
fn spell(c: char, style: usize, input: &mut Input) -> String {
    let choice = input.byte();
    let upper = choice & 1 == 0;
    // Letters and digits are left as written half the time: encoders leave them.
    let plain = c.is_ascii_alphanumeric() && choice & 2 == 0;
    let style = if style == 4 {
        usize::from(choice >> 2) % 4
    } else {
        style
    };
    let mut utf8 = [0u8; 4];
    match style {
        _ if plain => c.to_string(),
        1 => match (c, choice & 4 == 0) {
            ('/', true) => r"\/".to_owned(),
            ('"', true) => r#"\""#.to_owned(),
            _ => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|unit| match upper {
                    true => format!("\\u{unit:04X}"),
                    false => format!("\\u{unit:04x}"),
                })
                .collect(),
        },
        2 => c
            .encode_utf8(&mut utf8)
            .bytes()
            .map(|b| match upper {
                true => format!("%{b:02X}"),
                false => format!("%{b:02x}"),
            })
            .collect(),
        3 => {
            let named = NAMES.iter().find(|(n, _)| *n == c);
            // Zero-padded, up to the 8 digits a reference is read with.
            let padded = |digits: String| {
                let zeros = (usize::from(choice >> 5) % 4).min(8 - digits.len());
                format!("{}{digits};", "0".repeat(zeros))
            };
            let code = u32::from(c);
            match (named, (choice >> 3) % 4) {
                (Some((_, name)), 0) => format!("&{name};"),
                (_, 1) if upper => format!("&#X{}", padded(format!("{code:X}"))),
                (_, 2) => format!("&#x{}", padded(format!("{code:x}"))),
                _ => format!("&#{}", padded(code.to_string())),
            }
        }
        _ => c.to_string(),
    }
}

/// An answer: the input's bytes, with echoes of `secrets` (whole or cut short) and of decoys
/// (strings of the same alphabet that are none of them) spelled among them. Returns it, the
/// answer without the echoes (decoys and noise only), and whether an echo the excerpt must
/// redact was placed across the cut.
fn answer(input: &mut Input, secrets: &[String]) -> (Vec<u8>, Vec<u8>, bool) {
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    let (mut answer, mut noise) = (Vec::new(), Vec::new());
    let mut across = false;
    while !input.done() && answer.len() < 2048 {
        match input.below(8) {
            0..=2 => {
                let len = input.below(64);
                let chunk = input.take(len);
                answer.extend_from_slice(chunk);
                noise.extend_from_slice(chunk);
            }
            3 => {
                let len = 1 + input.below(12);
                let decoy: Vec<char> = (0..len)
                    .map(|_| alphabet[input.below(alphabet.len())])
                    .collect();
                let style = input.below(5);
                let mut spelled = Vec::new();
                spell_all(&decoy, style, input, &mut spelled);
                answer.extend_from_slice(&spelled);
                noise.extend_from_slice(&spelled);
            }
            kind => {
                let secret: Vec<char> = secrets[input.below(secrets.len())].chars().collect();
                let n = secret.len();
                let cut = 1 + input.below(n);
                let mut run = match input.below(5) {
                    2 => secret[..cut].to_vec(),
                    3 => secret[n - cut..].to_vec(),
                    _ => secret.clone(),
                };
                if run.len() == n && input.byte() & 3 == 0 {
                    // Another secret on from this one, sharing the longest end of it that it
                    // starts with: a header value ending where a path token begins.
                    let other: Vec<char> = secrets[input.below(secrets.len())].chars().collect();
                    let shared = (1..n.min(other.len()))
                        .rev()
                        .find(|&k| run[n - k..] == other[..k])
                        .unwrap_or(0);
                    run.extend_from_slice(&other[shared..]);
                }
                let style = input.below(5);
                let mut spelled = Vec::new();
                spell_all(&run, style, input, &mut spelled);
                if kind == 7 && answer.len() < EXCERPT {
                    // Across the cut: from 1 to the whole spelling before it.
                    let before = 1 + input.below(spelled.len());
                    let start = EXCERPT.saturating_sub(before);
                    answer.resize(start.max(answer.len()), b' ');
                }
                let start = answer.len();
                answer.extend_from_slice(&spelled);
                // A whole echo (or two in a row) is followed to its end wherever that is; a run
                // cut short, only when it ends within ACROSS characters of the cut.
                across |= start < EXCERPT
                    && answer.len() > EXCERPT
                    && (run.len() >= n || (partial_min(n)..=ACROSS).contains(&run.len()));
            }
        }
    }
    (answer, noise, across)
}

/// Property 1: the excerpt is `answer`'s first [`EXCERPT`] bytes (as lossy UTF-8) with some
/// of them replaced with markers, each for at least one byte: what is not a marker stands for
/// at most that many bytes of the answer (a U+FFFD for at least one), and there are no more
/// markers than bytes redacted.
fn assert_bounded(answer: &[u8], excerpt: &str) {
    let shown = answer.len().min(EXCERPT);
    let markers = excerpt.matches(MARKER).count();
    let kept: usize = excerpt
        .split(MARKER)
        .flat_map(str::chars)
        .map(|c| if c == '\u{fffd}' { 1 } else { c.len_utf8() })
        .sum();
    assert!(
        kept + markers <= shown,
        "the excerpt holds more than the answer's first {EXCERPT} bytes ({kept} kept, {markers} \
         markers, of {shown}): {excerpt:?}"
    );
    if shown == 0 {
        assert_eq!(excerpt, "", "the excerpt of an empty answer");
    }
}

/// The hex digits' value, if `digits` are all hex digits.
fn hex(digits: Option<&[u8]>) -> Option<u32> {
    let digits = digits?;
    digits
        .iter()
        .all(u8::is_ascii_hexdigit)
        .then(|| u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok())
        .flatten()
}

/// A `%XX` at `at`: its byte and the position after it.
fn percent_at(text: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    (text[at] == b'%')
        .then(|| hex(text.get(at + 1..at + 3)))
        .flatten()
        .map(|b| (vec![b as u8], at + 3))
}

/// A JSON escape at `at` (`\uXXXX`, a surrogate pair, `\/`, `\"`, `\\`…): its character's bytes
/// (U+FFFD for a lone surrogate) and the position after it.
fn json_at(text: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    if text[at] != b'\\' {
        return None;
    }
    let c = match *text.get(at + 1)? {
        b'u' => {
            let unit = hex(text.get(at + 2..at + 6))?;
            let low = (text.get(at + 6..at + 8) == Some(b"\\u"))
                .then(|| hex(text.get(at + 8..at + 12)))
                .flatten();
            let (c, end) = match (unit, low) {
                (0xD800..=0xDBFF, Some(low @ 0xDC00..=0xDFFF)) => (
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)),
                    at + 12,
                ),
                _ => (char::from_u32(unit), at + 6),
            };
            let c = c.unwrap_or('\u{fffd}');
            return Some((c.to_string().into_bytes(), end));
        }
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    };
    Some((c.to_string().into_bytes(), at + 2))
}

/// An HTML reference at `at` (numeric, up to 8 digits, `;` optional; or one of [`NAMES`]): its
/// character's bytes and the position after it. A numeric one without `;` right before a marker
/// is not read: its digits may have run on into what the marker replaced.
fn html_at(text: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    if text[at] != b'&' {
        return None;
    }
    let rest = &text[at + 1..];
    if let Some(numeric) = rest.strip_prefix(b"#") {
        let (radix, skip) = match numeric.first() {
            Some(b'x' | b'X') => (16, 1),
            _ => (10, 0),
        };
        let digits = numeric[skip..]
            .iter()
            .take(9)
            .take_while(|b| char::from(**b).is_digit(radix))
            .count();
        if digits == 0 || digits > 8 {
            return None;
        }
        let code = std::str::from_utf8(&numeric[skip..skip + digits]).ok()?;
        let c = char::from_u32(u32::from_str_radix(code, radix).ok()?)?;
        let end = at + 2 + skip + digits;
        return match text.get(end) {
            Some(b';') => Some((c.to_string().into_bytes(), end + 1)),
            Some(b'[') => None,
            _ => Some((c.to_string().into_bytes(), end)),
        };
    }
    NAMES.iter().find_map(|(c, name)| {
        let spelled = [name.as_bytes(), b";"].concat();
        rest.starts_with(&spelled)
            .then(|| (c.to_string().into_bytes(), at + 1 + spelled.len()))
    })
}

/// Reads the spelling at a position, if one starts there: the bytes it stands for and the
/// position after it.
type Reader = fn(&[u8], usize) -> Option<(Vec<u8>, usize)>;

/// `text` with each spelling one of `readers` reads at a position replaced with what it
/// stands for (the first that reads one), read once from the start.
fn decoded(text: &[u8], readers: &[Reader]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        match readers.iter().find_map(|read| read(text, at)) {
            Some((bytes, end)) => {
                out.extend_from_slice(&bytes);
                at = end;
            }
            None => {
                out.push(text[at]);
                at += 1;
            }
        }
    }
    out
}

/// What of `secret` must not be left in an excerpt: all of it, and its first and last
/// [`partial_min`] characters (any longer run of its start or end holds one of them).
fn runs(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    let min = partial_min(chars.len());
    let mut runs = vec![secret.to_owned()];
    if chars.len() >= min {
        runs.push(chars[..min].iter().collect());
        runs.push(chars[chars.len() - min..].iter().collect());
    }
    runs
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Property 2: `excerpt` spells none of `secrets` nor a run of the start or end of one, as
/// written, nor decoded as percent-encoding, JSON escapes, HTML references, or all three.
fn assert_no_secret(excerpt: &str, secrets: &[String]) {
    let text = excerpt.as_bytes();
    let views = [
        ("as written", text.to_vec()),
        ("percent-decoded", decoded(text, &[percent_at])),
        ("JSON-unescaped", decoded(text, &[json_at])),
        ("HTML-unescaped", decoded(text, &[html_at])),
        ("decoded", decoded(text, &[percent_at, json_at, html_at])),
    ];
    for secret in secrets {
        for run in runs(secret) {
            for (how, view) in &views {
                assert!(
                    !contains(view, run.as_bytes()),
                    "the excerpt, {how}, shows {run:?} of the secret {secret:?}: {excerpt:?}"
                );
            }
        }
    }
}

/// Whether `answer` may spell one of `secrets`' [`runs`]: more often than the library finds
/// one, never less. Each character is read as written or percent-encoded byte by byte, or as any
/// character at all where an escape (`\`) or a reference (`&`) may start, ending wherever one
/// could.
fn may_spell(answer: &[u8], secrets: &[String]) -> bool {
    let next = |at: usize, c: char, out: &mut Vec<usize>| {
        let mut here = vec![at];
        let mut utf8 = [0u8; 4];
        for &byte in c.encode_utf8(&mut utf8).as_bytes() {
            let mut there = Vec::new();
            for &i in &here {
                if answer.get(i) == Some(&byte) || (byte == b' ' && answer.get(i) == Some(&b'+')) {
                    there.push(i + 1);
                }
                if answer.get(i) == Some(&b'%')
                    && hex(answer.get(i + 1..i + 3)) == Some(byte.into())
                {
                    there.push(i + 3);
                }
            }
            here = there;
        }
        out.extend(here);
        match answer.get(at) {
            Some(b'\\') => out.extend([at + 2, at + 6, at + 12]),
            Some(b'&') => out.extend(at + 2..=at + 14),
            _ => {}
        }
    };
    secrets.iter().flat_map(|s| runs(s)).any(|run| {
        let mut states: Vec<usize> = (0..answer.len()).collect();
        for c in run.chars() {
            let mut after = Vec::new();
            for &at in &states {
                next(at, c, &mut after);
            }
            after.retain(|&at| at <= answer.len());
            after.sort_unstable();
            after.dedup();
            states = after;
            if states.is_empty() {
                return false;
            }
        }
        true
    })
}

/// The target: see the module's documentation.
pub fn redact(input: &[u8]) -> Outcome {
    let mut input = Input {
        bytes: input,
        at: 0,
    };
    let setup = setup(&mut input);
    let (answer, noise, across) = answer(&mut input, &setup.secrets);
    let signature = setup.signature.as_deref();

    // The texts the checks below take for the forward's secrets are its secrets.
    for secret in &setup.secrets {
        assert_eq!(
            setup.forward.redact_echoes(secret.as_bytes(), signature),
            MARKER,
            "the forward does not take {secret:?} for a secret"
        );
    }

    let excerpt = setup.forward.redact_echoes(&answer, signature);
    assert_bounded(&answer, &excerpt);
    assert_no_secret(&excerpt, &setup.secrets);
    if across {
        assert!(
            excerpt.ends_with(MARKER),
            "an echo across the cut is shown in part: {excerpt:?}"
        );
    }

    let plain = setup.forward.redact_echoes(&noise, signature);
    assert_bounded(&noise, &plain);
    assert_no_secret(&plain, &setup.secrets);
    let clean = !may_spell(&noise, &setup.secrets);
    if clean {
        let shown = String::from_utf8_lossy(&noise[..noise.len().min(EXCERPT)]);
        assert_eq!(plain, shown, "an answer with no secret in it was changed");
    }

    let markers = excerpt.matches(MARKER).count().min(15) as u8;
    fnv(&[
        markers,
        setup.carriers as u8,
        u8::from(across),
        u8::from(clean),
        setup.secrets.len().min(15) as u8,
    ])
}
