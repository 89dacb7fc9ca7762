//! The `X-CCAI-Signature` scheme: `base64(HMAC-SHA256(secret, clientId + ":" + eventHash))`.
//!
//! What the signature does and does not cover matters: it authenticates the pair
//! `clientId:eventHash` only, not `eventType` or `data`. Only CloudContactAI knows how `eventHash`
//! is derived, so a receiver cannot tie `data` to it; and there is no timestamp, so a captured delivery
//! verifies forever. Deduplicate on `eventHash` (see the handler's deduplicator) to make replays
//! harmless.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of a valid signature: 32 MAC bytes as standard padded base64.
pub(crate) const SIGNATURE_LEN: usize = 44;

/// The HTTP header that carries the signature (matched case-insensitively by HTTP libraries).
pub const SIGNATURE_HEADER: &str = "X-CCAI-Signature";

/// Computes the signature CloudContactAI sends for `event_hash`, for the account `client_id`.
///
/// This is what the official SDKs compute; it does not validate its inputs (an empty secret still
/// gives a MAC). [`verify_signature`] is the strict side.
///
/// ```
/// use ccai::webhook::sign;
///
/// let signature = sign("client-123", "event-hash-abc123", "test-secret");
/// assert_eq!(signature, "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=");
/// ```
pub fn sign(client_id: &str, event_hash: &str, secret: &str) -> String {
    let mut mac = keyed(secret);
    mac.update(client_id.as_bytes());
    mac.update(b":");
    mac.update(event_hash.as_bytes());
    encode_mac(mac)
}

/// Checks `signature` against the one expected for `event_hash`, `client_id` and `secret`.
///
/// Returns `false` for an empty signature, client id, event hash or secret, and for anything but
/// the exact standard padded base64 string (no hex, no url-safe alphabet, no prefix, no whitespace).
/// The comparison runs in constant time over the whole value, length included.
///
/// For several secrets (rotation), a reason on failure, or many verifications with the same secret,
/// use [`Verifier`](super::Verifier).
///
/// ```
/// use ccai::webhook::verify_signature;
///
/// let ok = verify_signature(
///     "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
///     "client-123",
///     "event-hash-abc123",
///     "test-secret",
/// );
/// assert!(ok);
/// assert!(!verify_signature("", "client-123", "event-hash-abc123", "test-secret"));
/// ```
pub fn verify_signature(signature: &str, client_id: &str, event_hash: &str, secret: &str) -> bool {
    if signature.is_empty() || client_id.is_empty() || event_hash.is_empty() || secret.is_empty() {
        return false;
    }
    let mut mac = keyed(secret);
    mac.update(client_id.as_bytes());
    mac.update(b":");
    mac.update(event_hash.as_bytes());
    matches_mac(signature.as_bytes(), mac).into()
}

/// HMAC state keyed with `secret`. Any key length is valid for HMAC, so this cannot fail.
pub(crate) fn keyed(secret: &str) -> HmacSha256 {
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn encode_mac(mac: HmacSha256) -> String {
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of the presented signature with the finished MAC's base64 form.
///
/// Comparing the encoded strings (rather than decoding the presented one) rejects every alternative
/// encoding of the right MAC: unpadded, url-safe, non-canonical trailing bits.
pub(crate) fn matches_mac(presented: &[u8], mac: HmacSha256) -> subtle::Choice {
    let mut expected = [0u8; SIGNATURE_LEN];
    let written = STANDARD
        .encode_slice(mac.finalize().into_bytes(), &mut expected)
        .unwrap_or(0);
    // A length mismatch is answered without looking at contents: the length of a signature is
    // public (always 44), so that early answer leaks nothing.
    if presented.len() != written {
        return subtle::Choice::from(0);
    }
    ct_eq_words(presented, &expected[..written])
}

/// Constant-time equality of two equally long byte strings, eight bytes at a time: the same
/// `subtle` comparison as `[u8]::ct_eq`, with one optimisation barrier per word instead of per byte.
fn ct_eq_words(a: &[u8], b: &[u8]) -> subtle::Choice {
    let word = |chunk: &[u8]| {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        u64::from_ne_bytes(bytes)
    };
    let mut equal = subtle::Choice::from(u8::from(a.len() == b.len()));
    for (x, y) in a.chunks(8).zip(b.chunks(8)) {
        equal &= word(x).ct_eq(&word(y));
    }
    equal
}

/// Whether `s` has the form of a signature: 43 standard base64 characters and one `=`.
pub(crate) fn is_well_formed(s: &[u8]) -> bool {
    s.len() == SIGNATURE_LEN
        && s[SIGNATURE_LEN - 1] == b'='
        && s[..SIGNATURE_LEN - 1]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_comparison_sees_every_byte() {
        let a: Vec<u8> = (0..44).collect();
        assert!(bool::from(ct_eq_words(&a, &a)));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x80;
            assert!(!bool::from(ct_eq_words(&a, &b)), "byte {i}");
        }
        assert!(!bool::from(ct_eq_words(&a, &a[..43])));
        assert!(bool::from(ct_eq_words(&[], &[])));
    }

    #[test]
    fn well_formed_accepts_only_padded_standard_base64_of_44() {
        let good = sign("c", "h", "s");
        assert!(is_well_formed(good.as_bytes()));
        assert!(!is_well_formed(good.trim_end_matches('=').as_bytes()));
        assert!(!is_well_formed(good.replace('=', "A").as_bytes()));
        let url_safe = "xsVK2WCReT-_qDcdybJWueN8wuNu8eI4eemZ7RZ_uFs=";
        assert!(!is_well_formed(url_safe.as_bytes()));
    }

    #[test]
    fn non_canonical_trailing_bits_do_not_verify() {
        // "...a6Y=" and "...a6Z=" decode to the same 32 bytes when the spare bits are ignored.
        let sig = "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Z=";
        assert!(!verify_signature(
            sig,
            "client-123",
            "event-hash-abc123",
            "test-secret"
        ));
    }
}
