//! The `post_transform` of ai.onnx.ml classifiers, computed in f32 with onnxruntime's own
//! formulas (`ml_common.h`): its logistic, its softmax, its SOFTMAX_ZERO that leaves zero scores
//! out, and its PROBIT built on an approximate inverse error function rather than an exact one.

/// What a classifier does to its raw scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// The attribute value, spelled exactly as onnxruntime accepts it.
    pub(crate) fn parse(value: &str) -> Option<PostTransform> {
        Some(match value {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            _ => return None,
        })
    }

    /// The error text for a value [`PostTransform::parse`] refused.
    pub(crate) fn expected(value: &str) -> String {
        format!("is {value:?}; it must be one of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT")
    }

    /// Transforms one row of scores in place.
    pub(crate) fn apply(self, row: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => row.iter_mut().for_each(|x| *x = mlas_logistic(*x)),
            PostTransform::Probit => row.iter_mut().for_each(|x| *x = Self::probit(*x)),
            PostTransform::Softmax => softmax(row),
            PostTransform::SoftmaxZero => softmax_zero(row),
        }
    }

    /// onnxruntime's `ComputeLogistic`: computed on `-|x|` so that `exp` cannot overflow.
    pub(crate) fn logistic(x: f32) -> f32 {
        let v = 1.0 / (1.0 + (-x.abs()).exp());
        if x < 0.0 { 1.0 - v } else { v }
    }

    /// onnxruntime's `ComputeProbit`: `√2 · erfinv(2x - 1)`, NaN outside `[0, 1]`.
    pub(crate) fn probit(x: f32) -> f32 {
        std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
    }
}

/// onnxruntime's `MlasComputeLogistic`, which it uses on rows of scores: Eigen's rational
/// approximation on `[-18, 18]`, evaluated with fused multiply-adds as its x86 kernels do.
fn mlas_logistic(x: f32) -> f32 {
    // A NaN stays NaN through the clamp, as through onnxruntime's comparisons.
    let v = x.clamp(-18.0, 18.0);
    let v2 = v * v;
    // Eigen's constants, as f32 (the shortest decimals that give the same floats).
    let p = v2.mul_add(4.37031e-11, 1.1562732e-7);
    let p = p.mul_add(v2, 6.085749e-5);
    let p = p.mul_add(v2, 0.008513771);
    let p = p.mul_add(v2, 0.24828795) * v;
    let q = v2.mul_add(6.1024737e-13, 5.7610214e-9);
    let q = q.mul_add(v2, 6.291068e-6);
    let q = q.mul_add(v2, 0.0017019882);
    let q = q.mul_add(v2, 0.11681765);
    let q = q.mul_add(v2, 0.9931519);
    (p / q + 0.5).clamp(0.0, 1.0)
}

/// onnxruntime's `ErfInv`: Winitzki's approximation with a = 0.147, in f32. Near 0 it subtracts
/// two close numbers, so only the same operations in the same order give the same result
/// (older onnxruntime releases used 3.14159 for π, which moves some results near 0.5 by 1e-3).
fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147_f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

/// Softmax of one row, shifted by its maximum.
fn softmax(row: &mut [f32]) {
    let max = row
        .iter()
        .fold(-f32::MAX, |m, &x| if x > m { x } else { m });
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    row.iter_mut().for_each(|x| *x /= sum);
}

/// onnxruntime's `ComputeSoftmaxZero`: scores within 1e-7 of zero are not exponentiated (they
/// stay near 0), so a row of zeros divides 0 by 0 and gives NaN, as onnxruntime does.
fn softmax_zero(row: &mut [f32]) {
    let max = row
        .iter()
        .fold(-f32::MAX, |m, &x| if x > m { x } else { m });
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for x in row.iter_mut() {
        if *x > 0.000_000_1 || *x < -0.000_000_1 {
            *x = (*x - max).exp();
            sum += *x;
        } else {
            *x *= exp_neg_max;
        }
    }
    row.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_is_symmetric_and_saturates_without_overflow() {
        assert_eq!(PostTransform::logistic(0.0), 0.5);
        assert!((PostTransform::logistic(2.0) + PostTransform::logistic(-2.0) - 1.0).abs() < 1e-7);
        assert_eq!(PostTransform::logistic(1000.0), 1.0);
        assert_eq!(PostTransform::logistic(-1000.0), 0.0);
    }

    #[test]
    fn probit_of_a_half_is_zero_and_outside_the_unit_interval_is_nan() {
        assert_eq!(PostTransform::probit(0.5), 0.0);
        // The approximation is within 2e-3 of the true quantile (1.6448536 at 0.95).
        assert!((PostTransform::probit(0.95) - 1.644_853_6).abs() < 2e-3);
        assert!(PostTransform::probit(1.5).is_nan());
    }

    #[test]
    fn softmax_zero_leaves_zero_scores_at_zero() {
        let mut row = [1.0, 0.0, 2.0];
        softmax_zero(&mut row);
        assert_eq!(row[1], 0.0);
        assert!((row[0] + row[2] - 1.0).abs() < 1e-6);
        let mut zeros = [0.0, 0.0];
        softmax_zero(&mut zeros);
        assert!(zeros.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn only_onnxruntime_spellings_parse() {
        assert_eq!(
            PostTransform::parse("SOFTMAX_ZERO"),
            Some(PostTransform::SoftmaxZero)
        );
        assert_eq!(PostTransform::parse("softmax"), None);
    }
}
