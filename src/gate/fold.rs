//! JSON keys as Ollama's Go decoder matches them.
//!
//! Go's `encoding/json` fills a struct field from the key with its exact name, or else from any
//! key equal to it under Unicode simple case folding (the last such key wins). So `"MODEL"`,
//! `"meſſages"` (U+017F, long s) and `"\u{212A}eep_alive"` (Kelvin sign) all reach Ollama as
//! `model`, `messages` and `keep_alive`. A gateway that validates the exact key and forwards
//! the body would let a second spelling carry an unchecked value past it. Every body the gateway
//! checks and forwards goes through [`refuse_variants`]: a key that folds to a field the gateway
//! validates, but is not that field's exact spelling, is refused with 400.

use crate::error::GatewayError;

/// Go's fold of one character, for comparing against ASCII field names: ASCII letters compare
/// without case, and the only two non-ASCII characters whose simple case-fold orbit contains an
/// ASCII letter (`ſ` U+017F with `s`, `K` U+212A with `k`) compare as that letter. Any other
/// non-ASCII character folds to something non-ASCII, so it can never match an ASCII name.
fn fold(c: char) -> Option<u8> {
    match c {
        '\u{017F}' => Some(b's'),
        '\u{212A}' => Some(b'k'),
        c if c.is_ascii() => Some((c as u8).to_ascii_lowercase()),
        _ => None,
    }
}

/// Whether Go's decoder would fill the field `name` (ASCII, as all of Ollama's are) from `key`.
pub fn go_matches(key: &str, name: &str) -> bool {
    let mut name = name.bytes();
    for c in key.chars() {
        match (fold(c), name.next()) {
            (Some(k), Some(n)) if k == n.to_ascii_lowercase() => {}
            _ => return false,
        }
    }
    name.next().is_none()
}

/// The field of `fields` that Go's decoder would fill from `key` although `key` is not spelled
/// exactly like it (`None` for an exact name, or a key no field matches).
pub fn variant_of<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    if fields.contains(&key) {
        return None;
    }
    fields.iter().copied().find(|field| go_matches(key, field))
}

/// The 400 for `key`, another spelling of `field`; `path` is where the field stands
/// (`messages[0].role`, or the field itself at the top of a body).
pub fn variant_refusal(path: &str, key: &str, field: &str) -> GatewayError {
    GatewayError::invalid(
        path,
        format!(
            "{path}: the key {key:?} would be read by Ollama as `{field}`; field names are \
             case-sensitive here, spell it `{field}`"
        ),
    )
}

/// Refuse the first key that Go would read as one of `fields` but that is not spelled exactly
/// like it (400 naming the field). `fields` are the names whose values the gateway checks.
pub fn refuse_variants<'k>(
    keys: impl IntoIterator<Item = &'k String>,
    fields: &[&str],
) -> Result<(), GatewayError> {
    for key in keys {
        if let Some(field) = variant_of(key, fields) {
            return Err(variant_refusal(field, key, field));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_folding_matches_case_and_the_two_non_ascii_letters() {
        assert!(go_matches("model", "model"));
        assert!(go_matches("MODEL", "model"));
        assert!(go_matches("meſſages", "messages"));
        assert!(go_matches("ſtream", "stream"));
        assert!(go_matches("\u{212A}eep_alive", "keep_alive"));
        assert!(go_matches("optionſ", "options"));
        assert!(!go_matches("model ", "model"));
        assert!(!go_matches("modal", "model"));
        assert!(!go_matches("mode", "model"));
        assert!(!go_matches("modél", "model"));
        // Dotless and dotted i are not in i's simple fold orbit.
        assert!(!go_matches("\u{0131}mages", "images"));
        assert!(!go_matches("\u{0130}mages", "images"));
    }

    #[test]
    fn variants_are_refused_naming_the_field() {
        let keys: Vec<String> = ["model", "meſſages", "other"]
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        match refuse_variants(&keys, &["model", "messages"]) {
            Err(GatewayError::InvalidRequest { param, message }) => {
                assert_eq!(param.as_deref(), Some("messages"));
                assert!(message.contains("meſſages"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(refuse_variants(&keys[..1], &["model", "messages"]).is_ok());
        assert!(refuse_variants(&keys, &["prompt"]).is_ok());
    }
}
