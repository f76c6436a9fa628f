//! Percentiles over samples in microseconds.

use serde_json::{Value, json};

/// The `q` quantile (0..=1) of sorted samples, nearest-rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "rank is within 0..len"
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// Sort in place (NaN-free samples).
pub fn sort(samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
}

/// `{"n","p50","p90","p99","max","mean"}` of the samples, rounded to 0.1.
pub fn summary(samples: &mut [f64]) -> Value {
    sort(samples);
    let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    #[expect(clippy::cast_precision_loss, reason = "sample counts are small")]
    let mean = (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64);
    json!({
        "n": samples.len(),
        "p50": round(quantile(samples, 0.50)),
        "p90": round(quantile(samples, 0.90)),
        "p99": round(quantile(samples, 0.99)),
        "max": round(samples.last().copied()),
        "mean": round(mean),
    })
}

/// Microseconds of a duration.
pub fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.0));
        assert_eq!(quantile(&v, 0.99), Some(4.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
