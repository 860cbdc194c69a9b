//! What onnxruntime does with a row's aggregated tree scores: base values, the label choice
//! (with its binary-classifier special cases) and the post transform, reproduced exactly,
//! including the quirks, so that tiffin's outputs match onnxruntime's.
//!
//! The logic follows onnxruntime's `tree_ensemble_aggregator.h` and `ml_common.h`
//! (`TreeAggregator*::FinalizeScores*`, `_set_score_binary`, `write_scores`), checked against
//! onnxruntime 1.32 on hand-built models. Scores carry a "has score" flag, as in onnxruntime:
//! a class or target no reached leaf voted for reads as 0 when written out.

use std::fmt::Debug;
use std::ops::{Add, Div, Neg, Sub};

use super::spec::{Aggregate, Post, Spec, Which};

/// The float type trees are evaluated in: onnxruntime compares and accumulates in `f32` for
/// `f32` (and integer) inputs and in `f64` for `f64` inputs.
pub(crate) trait Value:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Neg<Output = Self>
    + Div<Output = Self>
    + Debug
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    fn from_f64(v: f64) -> Self;
    fn from_usize(v: usize) -> Self;
    fn to_f32(self) -> f32;
    fn is_nan(self) -> bool;
}

impl Value for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const HALF: f32 = 0.5;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn from_usize(v: usize) -> f32 {
        v as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Value for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const HALF: f64 = 0.5;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn from_usize(v: usize) -> f64 {
        v as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// The label of a classified row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// Index into the class labels.
    Class(usize),
    /// onnxruntime's two-class classifiers that are not its "binary case" answer the literal
    /// 1 or 0 rather than a class label; for string labels it is used as an index.
    Literal(i64),
}

/// A score as onnxruntime reads it when writing: 0 unless some leaf (or base value) set it.
fn masked<T: Value>(score: T, has: bool) -> T {
    if has { score } else { T::ZERO }
}

/// Replaces every score by what onnxruntime reads when it writes it.
fn mask<T: Value>(score: &mut [T], has: &[bool]) {
    for (s, &h) in score.iter_mut().zip(has) {
        *s = masked(*s, h);
    }
}

pub(crate) fn logistic(v: f32) -> f32 {
    let e = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - e } else { e }
}

/// onnxruntime's approximation of the inverse error function (not the exact one: the
/// approximation is what the reference outputs hold).
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

pub(crate) fn probit(v: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * v - 1.0)
}

fn softmax(out: &mut [f32]) {
    let max = out
        .iter()
        .fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0f32;
    for v in out.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in out.iter_mut() {
        *v /= sum;
    }
}

/// Softmax that leaves (near-)zero scores out of the sum, as onnxruntime's `SOFTMAX_ZERO`.
fn softmax_zero(out: &mut [f32]) {
    let max = out
        .iter()
        .fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for v in out.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in out.iter_mut() {
        *v /= sum;
    }
}

/// onnxruntime's `write_scores`. `values` are already masked. With one value (a two-class
/// classifier whose second class got no score), `add_second` says how to make the second
/// column; onnxruntime leaves that column unwritten in two cases (PROBIT, and no rule), where
/// tiffin writes 0.
fn write_scores<T: Value>(values: &[T], post: Post, add_second: i32, out: &mut [f32]) {
    if let [v] = values {
        let v = *v;
        let pair = if post == Post::Probit {
            [probit(v.to_f32()), 0.0]
        } else {
            match add_second {
                0 | 1 => [(T::ONE - v).to_f32(), v.to_f32()],
                2 | 3 if post == Post::Logistic => [logistic((-v).to_f32()), logistic(v.to_f32())],
                2 | 3 => [(-v).to_f32(), v.to_f32()],
                _ => [v.to_f32(), 0.0],
            }
        };
        out[..2].copy_from_slice(&pair);
        return;
    }
    for (o, v) in out.iter_mut().zip(values) {
        *o = v.to_f32();
    }
    match post {
        Post::None => {}
        Post::Logistic => out.iter_mut().for_each(|v| *v = logistic(*v)),
        Post::Probit => out.iter_mut().for_each(|v| *v = probit(*v)),
        Post::Softmax => softmax(out),
        Post::SoftmaxZero => softmax_zero(out),
    }
}

/// Turns one row's accumulated scores into its outputs. `score`/`has` hold one slot per class
/// or target (one slot in total for a single-target regressor); `out` receives the row's
/// `n_outputs` scores. Returns the label for a classifier.
pub(crate) fn finalize<T: Value>(
    spec: &Spec,
    base: &[T],
    n_trees: usize,
    score: &mut [T],
    has: &mut [bool],
    out: &mut [f32],
) -> Option<Label> {
    match spec.which {
        Which::Regressor if spec.n_outputs == 1 => {
            finalize_single(spec, base, n_trees, score[0], has[0], &mut out[0]);
            None
        }
        Which::Regressor => {
            finalize_regressor(spec, base, n_trees, score, has, out);
            None
        }
        Which::Classifier => Some(finalize_classifier(spec, base, score, has, out)),
    }
}

/// One target: onnxruntime's `FinalizeScores1`. Only PROBIT is applied there; the other post
/// transforms are ignored for a single target.
fn finalize_single<T: Value>(
    spec: &Spec,
    base: &[T],
    n_trees: usize,
    score: T,
    has: bool,
    out: &mut f32,
) {
    let origin = base.first().copied().unwrap_or(T::ZERO);
    let value = match spec.aggregate {
        Aggregate::Sum => score + origin,
        Aggregate::Average => score / T::from_usize(n_trees) + origin,
        Aggregate::Min | Aggregate::Max => {
            if has {
                score + origin
            } else {
                origin
            }
        }
    };
    *out = if spec.post == Post::Probit {
        probit(value.to_f32())
    } else {
        value.to_f32()
    };
}

fn finalize_regressor<T: Value>(
    spec: &Spec,
    base: &[T],
    n_trees: usize,
    score: &mut [T],
    has: &mut [bool],
    out: &mut [f32],
) {
    let use_base = !base.is_empty();
    for t in 0..score.len() {
        let b = if use_base { base[t] } else { T::ZERO };
        score[t] = match spec.aggregate {
            Aggregate::Sum => score[t] + b,
            Aggregate::Average => score[t] / T::from_usize(n_trees) + b,
            // The has flag stays as it was: a target no leaf reached still reads 0.
            Aggregate::Min | Aggregate::Max => b + masked(score[t], has[t]),
        };
    }
    mask(score, has);
    write_scores(score, spec.post, -1, out);
}

fn finalize_classifier<T: Value>(
    spec: &Spec,
    base: &[T],
    score: &mut [T],
    has: &mut [bool],
    out: &mut [f32],
) -> Label {
    let n = score.len();
    if n > 2 {
        for (k, &b) in base.iter().enumerate() {
            if has[k] {
                score[k] = score[k] + b;
            } else {
                has[k] = true;
                score[k] = b;
            }
        }
        // The first class with the highest score among those that have one.
        let mut best: Option<usize> = None;
        for k in 0..n {
            if has[k] && best.is_none_or(|b| score[k] > score[b]) {
                best = Some(k);
            }
        }
        mask(score, has);
        write_scores(score, spec.post, -1, out);
        return Label::Class(best.unwrap_or(0));
    }

    // Two classes.
    let mut add_second = -1;
    let mut len = 2;
    match base.len() {
        2 => {
            if has[1] {
                // onnxruntime ignores base_values[0] and class 1's own sum here.
                score[1] = base[1] + score[0];
                score[0] = -score[1];
            } else {
                // "Binary as multiclass": the base values are added but the flags stay unset.
                score[1] = score[1] + base[1];
                score[0] = score[0] + base[0];
            }
        }
        1 => {
            score[0] = score[0] + base[0];
            if !has[1] {
                len = 1;
            }
        }
        _ => {
            add_second = 3;
            if !has[1] {
                len = 1;
            }
        }
    }
    let positive = if len == 2 && has[1] {
        score[1]
    } else if has[0] {
        score[0]
    } else {
        T::ZERO
    };
    let label = if spec.binary_case {
        let (threshold, win, lose) = if spec.weights_all_positive {
            (T::HALF, 0, 1)
        } else {
            (T::ZERO, 2, 3)
        };
        if positive > threshold {
            add_second = win;
            Label::Class(1)
        } else {
            add_second = lose;
            Label::Class(0)
        }
    } else {
        Label::Literal(if positive > T::ZERO { 1 } else { 0 })
    };
    mask(score, has);
    write_scores(&score[..len], spec.post, add_second, out);
    label
}
