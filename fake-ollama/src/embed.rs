//! Deterministic embeddings: the same text always gets the same unit vector.

/// Dimensions when the request does not ask for a number, or asks for one the fake does not
/// honour (as real Ollama answers its model's whole vector then).
pub(crate) const DEFAULT_DIMENSIONS: usize = 8;
/// Largest `dimensions` honoured (the fake's vectors are made to measure, up to this length).
pub(crate) const MAX_DIMENSIONS: usize = 4096;

/// FNV-1a, 64-bit: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64: spreads one seed into a sequence of well-mixed numbers.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unit-length vector derived from `text`, like Ollama's normalised embeddings.
pub(crate) fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = fnv1a(text);
    #[expect(clippy::cast_precision_loss, reason = "24 significant bits are enough")]
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| ((splitmix(&mut state) >> 40) as f64 / f64::from(1u32 << 23)) - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    #[expect(clippy::cast_possible_truncation, reason = "embeddings are float32")]
    raw.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

/// float32 values widened so JSON shows them as Go prints a float32 (`0.010071029`, not
/// `0.010071029328....`): through their shortest decimal form.
pub(crate) fn as_json_floats(values: &[f32]) -> Vec<f64> {
    values
        .iter()
        .map(|v| v.to_string().parse().unwrap_or(f64::from(*v)))
        .collect()
}

/// A rough token count: words, at least one per non-empty input.
pub(crate) fn token_count(text: &str) -> usize {
    text.split_whitespace()
        .count()
        .max(usize::from(!text.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unit_vectors() {
        let a = embedding("Why is the sky blue?", 8);
        assert_eq!(a, embedding("Why is the sky blue?", 8));
        assert_ne!(a, embedding("Why is grass green?", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
