//! The format of keys the gateway makes: `og_` + 43 base62 characters (32 random bytes) + a
//! 6-character checksum. A mistyped or cut-off key fails the checksum and is refused before any
//! lookup, and secret scanners can match `og_[0-9A-Za-z]{49}`.

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// What every generated key starts with.
pub const PREFIX: &str = "og_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// How many characters of a key listings show.
pub const SHOWN: usize = 10;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `bytes` as a big-endian number in base62, left-padded with `0` to `width` characters.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    while number.iter().any(|b| *b != 0) {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 62).unwrap_or_default();
            remainder = value % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn checksum(body: &str) -> String {
    let hash = Sha256::digest(body.as_bytes());
    base62(&hash[..4], CHECK_LEN)
}

/// A new key from the operating system's random source.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("no random source: {e}"))?;
    let body = base62(&bytes, BODY_LEN);
    Ok(format!("{PREFIX}{body}{}", checksum(&body)))
}

/// Whether `key` claims to be one of ours (starts with `og_`).
pub fn is_ours(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// Whether a key that starts with `og_` has the right length, alphabet and checksum.
pub fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = rest.split_at(BODY_LEN);
    checksum(body) == check
}

/// The part of a key listings show.
pub fn shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_pass_and_damaged_ones_fail() {
        let key = generate().unwrap_or_default();
        assert_eq!(key.len(), 3 + 43 + 6, "{key}");
        assert!(well_formed(&key));
        assert!(!well_formed(&key[..key.len() - 1]), "truncated");
        let mut typo = key.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(&String::from_utf8(typo).unwrap_or_default()));
        assert_ne!(generate().unwrap_or_default(), key);
    }

    #[test]
    fn base62_is_a_number() {
        assert_eq!(base62(&[0], 3), "000");
        assert_eq!(base62(&[61], 1), "z");
        assert_eq!(base62(&[1, 0], 2), "48"); // 256 = 4*62 + 8
    }
}
