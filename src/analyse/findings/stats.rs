//! Order statistics for the beacon score: quantiles, Bowley skewness and the median
//! absolute deviation, over sorted samples.

/// The `q` quantile (0..=1) of sorted `v`, linearly interpolated; 0 when empty.
pub(super) fn quantile(v: &[f64], q: f64) -> f64 {
    match v.len() {
        0 => 0.0,
        1 => v[0],
        n => {
            #[expect(clippy::cast_precision_loss, reason = "sample sizes far below 2^52")]
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "0 <= pos <= n - 1"
            )]
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            #[expect(clippy::cast_precision_loss, reason = "sample sizes far below 2^52")]
            let frac = pos - lo as f64;
            v[lo] + (v[hi] - v[lo]) * frac
        }
    }
}

pub(super) fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Bowley (quartile) skewness, `(Q1 + Q3 - 2 Q2) / (Q3 - Q1)`, in -1..=1; 0 when the
/// quartiles coincide (a perfectly regular sample).
pub(super) fn bowley(v: &[f64]) -> f64 {
    let (q1, q2, q3) = (quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75));
    let iqr = q3 - q1;
    if iqr <= f64::EPSILON {
        0.0
    } else {
        ((q1 + q3 - 2.0 * q2) / iqr).clamp(-1.0, 1.0)
    }
}

/// Median absolute deviation from the median.
pub(super) fn mad(v: &[f64]) -> f64 {
    let m = median(v);
    let mut d: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    d.sort_by(f64::total_cmp);
    median(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_skew_and_mad() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((median(&v) - 3.0).abs() < 1e-9);
        assert!(bowley(&v).abs() < 1e-9, "symmetric");
        assert!((mad(&v) - 1.0).abs() < 1e-9);
        let skewed = [1.0, 1.0, 1.0, 2.0, 10.0, 50.0];
        assert!(bowley(&skewed) > 0.5);
        assert_eq!(bowley(&[7.0; 9]), 0.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
