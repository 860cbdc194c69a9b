//! The tree ensemble evaluator: a validated [`Spec`] compiled for one float type into flat node
//! arrays, walked for many (tree, row) pairs at once.
//!
//! A walk advances `LANES` independent (tree, row) pairs in lock step with a branch-free child
//! choice, so that the pairs' memory loads overlap instead of waiting on one another. Lanes take
//! either one tree over `LANES` rows (batches of at least `LANES` rows; the rows are first
//! transposed to feature-major order so that every lane reads its feature from the same place
//! plus its lane number) or one row over `LANES` consecutive trees (smaller batches). Either way
//! each lane carries a single position, which keeps the lanes in registers. Per row, trees are
//! added in the model's order, as onnxruntime does, so sums round the same way.
//!
//! Two layouts, chosen per forest:
//! - *complete*, for shallow forests (scikit-learn's gradient boosting, depth-limited random
//!   forests): every tree is padded to a complete binary tree of the forest's depth, a leaf above
//!   the bottom repeated under a split whose two sides are the same. Children are implicit
//!   (`2i + 1`, `2i + 2`) and every walk takes exactly `depth` steps, so a step is one 8-byte node
//!   load, one feature load and a comparison.
//! - *general*, for deep forests where padding would cost too much memory: 16-byte nodes holding
//!   their children, leaves stored after all branches as nodes whose children are themselves, so
//!   a finished lane idles in place until every lane of the step has reached a leaf.
//!
//! In both, a node's feature index shares a `u32` with its comparison (top four bits).

use super::post::{Label, Value, finalize};
use super::spec::{Aggregate, Cmp, Spec, Which};

/// (tree, row) pairs walked together.
const LANES: usize = 8;
/// Rows evaluated together: their inputs and scores stay in cache while every tree runs.
const BLOCK_ROWS: usize = 128;
/// The low bits of a node's `packed` hold the feature index, the top four the comparison.
const FEATURE_MASK: u32 = super::spec::MAX_FEATURE;
/// The const parameter value meaning "read the comparison from each node".
const MIXED: u8 = u8::MAX;
/// The largest depth padded to a complete tree (2^10 leaf slots per tree).
const MAX_COMPLETE_DEPTH: u32 = 10;

/// A node of the general layout.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node<T> {
    threshold: T,
    packed: u32,
    /// `[child if the comparison holds, child otherwise]`.
    children: [u32; 2],
}

/// A split of the complete layout; its children are implicit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split<T> {
    threshold: T,
    packed: u32,
}

/// The trees, in one of the two layouts.
#[derive(Debug, Clone, PartialEq)]
enum Layout<T> {
    /// Tree `t` occupies `splits[t << depth..(t + 1) << depth]` (the last slot unused) and
    /// `leaves[t << depth..(t + 1) << depth]`, the leaf reached at each bottom position. Padding
    /// trees (all splits neutral, every slot leaf 0) round the count up to a multiple of
    /// `LANES`, so that any `LANES` consecutive trees from a multiple of `LANES` exist.
    Complete {
        depth: u32,
        splits: Vec<Split<T>>,
        leaves: Vec<u32>,
    },
    /// Branches first, then leaves. `roots` are indices into `nodes`, padded to a multiple of
    /// `LANES` by repeating the last root.
    General {
        nodes: Vec<Node<T>>,
        n_internal: u32,
        roots: Vec<u32>,
        max_depth: u32,
    },
}

/// How a leaf's weights are folded into a row's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Single-target regressor: onnxruntime uses only each leaf's first weight.
    SingleSum,
    SingleMin,
    SingleMax,
    /// Sum, and every leaf has exactly one weight (scikit-learn's classifiers).
    SumOne,
    Sum,
    Min,
    Max,
}

/// A [`Spec`] compiled for evaluation in `T`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forest<T> {
    layout: Layout<T>,
    n_trees: usize,
    uniform: Option<Cmp>,
    fold: Fold,
    /// Scores per row: classes or targets, or 1 for a single-target regressor.
    slots: usize,
    leaf_start: Vec<u32>,
    leaf_targets: Vec<u32>,
    leaf_weights: Vec<T>,
    /// Each leaf's first weight and its class or target.
    leaf_first: Vec<T>,
    leaf_first_target: Vec<u32>,
    base: Vec<T>,
}

/// The outputs for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outputs {
    /// One per row for a classifier, empty for a regressor.
    pub(crate) labels: Vec<Label>,
    /// `rows x n_outputs`, row-major.
    pub(crate) scores: Vec<f32>,
}

#[inline(always)]
#[expect(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "a negated comparison is the one-instruction form of \"compare, or NaN\""
)]
fn goes_true<T: Value, const C: u8>(packed: u32, x: T, t: T) -> bool {
    let cmp = if C == MIXED { (packed >> 28) as u8 } else { C };
    match cmp {
        0 => x <= t,
        1 => x < t,
        2 => x >= t,
        3 => x > t,
        4 => x == t,
        5 => x != t,
        // The "or NaN" forms: a NaN makes every ordered comparison false, so the negated
        // opposite comparison holds for NaN and agrees with the plain one otherwise.
        6 => !(x > t),
        7 => !(x >= t),
        8 => !(x < t),
        9 => !(x <= t),
        _ => x == t || x.is_nan(),
    }
}

fn pack(feature: u32, cmp: Cmp) -> u32 {
    feature | ((cmp as u32) << 28)
}

impl<T: Value> Forest<T> {
    pub(crate) fn new(spec: &Spec) -> Forest<T> {
        Forest::with_layout(
            spec,
            complete_layout(spec).unwrap_or_else(|| general_layout(spec)),
        )
    }

    /// The forest in the general layout whatever its depth, to check one layout against the
    /// other.
    #[cfg(test)]
    pub(crate) fn general(spec: &Spec) -> Forest<T> {
        Forest::with_layout(spec, general_layout(spec))
    }

    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.layout, Layout::Complete { .. })
    }

    fn with_layout(spec: &Spec, layout: Layout<T>) -> Forest<T> {
        let firsts = &spec.leaf_start[..spec.n_leaves()];
        let single = spec.which == Which::Regressor && spec.n_outputs == 1;
        let one_each = spec.leaf_start.windows(2).all(|w| w[1] - w[0] == 1);
        let fold = match (single, spec.aggregate) {
            (true, Aggregate::Sum | Aggregate::Average) => Fold::SingleSum,
            (true, Aggregate::Min) => Fold::SingleMin,
            (true, Aggregate::Max) => Fold::SingleMax,
            (false, Aggregate::Sum | Aggregate::Average) if one_each => Fold::SumOne,
            (false, Aggregate::Sum | Aggregate::Average) => Fold::Sum,
            (false, Aggregate::Min) => Fold::Min,
            (false, Aggregate::Max) => Fold::Max,
        };
        Forest {
            layout,
            n_trees: spec.n_trees(),
            uniform: spec.uniform_cmp,
            fold,
            slots: if single { 1 } else { spec.n_outputs },
            leaf_start: spec.leaf_start.clone(),
            leaf_targets: spec.leaf_targets.clone(),
            leaf_weights: spec.leaf_weights.iter().map(|&w| T::from_f64(w)).collect(),
            leaf_first: firsts
                .iter()
                .map(|&s| T::from_f64(spec.leaf_weights[s as usize]))
                .collect(),
            leaf_first_target: firsts
                .iter()
                .map(|&s| spec.leaf_targets[s as usize])
                .collect(),
            base: spec.base_values.iter().map(|&b| T::from_f64(b)).collect(),
        }
    }

    /// Evaluates `rows` rows of `width` features each (`x` row-major). The caller has checked
    /// that `width` covers every feature the trees read and that `x` holds `rows * width` values.
    pub(crate) fn eval(&self, spec: &Spec, x: &[T], rows: usize, width: usize) -> Outputs {
        let n_out = spec.n_outputs;
        let mut out = Outputs {
            labels: Vec::with_capacity(if spec.which == Which::Classifier {
                rows
            } else {
                0
            }),
            scores: vec![0.0; rows * n_out],
        };
        let block = BLOCK_ROWS.min(rows.max(1));
        let mut score = vec![T::ZERO; block * self.slots];
        let mut has = vec![false; block * self.slots];
        let mut transposed = Vec::new();
        let mut row0 = 0;
        while row0 < rows {
            let n = block.min(rows - row0);
            score.fill(T::ZERO);
            has.fill(false);
            let xs = &x[row0 * width..(row0 + n) * width];
            self.dispatch(xs, width, n, &mut score, &mut has, &mut transposed);
            for r in 0..n {
                let slots = r * self.slots..(r + 1) * self.slots;
                let label = finalize(
                    spec,
                    &self.base,
                    self.n_trees,
                    &mut score[slots.clone()],
                    &mut has[slots],
                    &mut out.scores[(row0 + r) * n_out..(row0 + r + 1) * n_out],
                );
                out.labels.extend(label);
            }
            row0 += n;
        }
        out
    }

    /// Picks the walk specialised for the forest's comparison, if all branches share one.
    fn dispatch(
        &self,
        x: &[T],
        width: usize,
        rows: usize,
        score: &mut [T],
        has: &mut [bool],
        xt: &mut Vec<T>,
    ) {
        macro_rules! go {
            ($c:expr) => {
                self.accumulate::<{ $c }>(x, width, rows, score, has, xt)
            };
        }
        match self.uniform {
            Some(Cmp::Leq) => go!(Cmp::Leq as u8),
            Some(Cmp::Lt) => go!(Cmp::Lt as u8),
            Some(Cmp::Gte) => go!(Cmp::Gte as u8),
            Some(Cmp::Gt) => go!(Cmp::Gt as u8),
            Some(Cmp::Eq) => go!(Cmp::Eq as u8),
            Some(Cmp::Neq) => go!(Cmp::Neq as u8),
            Some(Cmp::LeqOrNan) => go!(Cmp::LeqOrNan as u8),
            Some(Cmp::LtOrNan) => go!(Cmp::LtOrNan as u8),
            Some(Cmp::GteOrNan) => go!(Cmp::GteOrNan as u8),
            Some(Cmp::GtOrNan) => go!(Cmp::GtOrNan as u8),
            Some(Cmp::EqOrNan) => go!(Cmp::EqOrNan as u8),
            None => go!(MIXED),
        }
    }

    /// Walks every (tree, row) pair of a block and folds each reached leaf into its row's
    /// scores, each row's trees in order.
    fn accumulate<const C: u8>(
        &self,
        x: &[T],
        width: usize,
        rows: usize,
        score: &mut [T],
        has: &mut [bool],
        xt: &mut Vec<T>,
    ) {
        if rows >= LANES {
            // Lanes are rows: transpose each group of LANES rows to [feature][lane], the last
            // group padded by repeating its last row.
            let groups = rows.div_ceil(LANES);
            let group_len = width * LANES;
            xt.clear();
            xt.resize(groups * group_len, T::ZERO);
            for (g, chunk) in xt.chunks_exact_mut(group_len).enumerate() {
                for k in 0..LANES {
                    let r = (g * LANES + k).min(rows - 1);
                    for (f, &v) in x[r * width..(r + 1) * width].iter().enumerate() {
                        chunk[f * LANES + k] = v;
                    }
                }
            }
            for tree in 0..self.n_trees {
                for (g, lanes) in xt.chunks_exact(group_len).enumerate() {
                    let leaves = match &self.layout {
                        Layout::Complete {
                            depth,
                            splits,
                            leaves,
                        } => {
                            let size = 1usize << depth;
                            let at = tree * size..(tree + 1) * size;
                            walk_rows_complete::<T, C>(
                                *depth,
                                &splits[at.clone()],
                                &leaves[at],
                                lanes,
                            )
                        }
                        Layout::General {
                            nodes,
                            n_internal,
                            roots,
                            max_depth,
                        } => walk_rows_general::<T, C>(
                            nodes,
                            *n_internal,
                            roots[tree],
                            *max_depth,
                            lanes,
                        ),
                    };
                    let live = LANES.min(rows - g * LANES);
                    for (k, &leaf) in leaves[..live].iter().enumerate() {
                        self.fold_leaf(leaf as usize, g * LANES + k, score, has);
                    }
                }
            }
        } else {
            // Lanes are trees: LANES consecutive trees on one row (the layouts are padded to a
            // multiple of LANES trees).
            for r in 0..rows {
                let row = &x[r * width..(r + 1) * width];
                for first in (0..self.n_trees).step_by(LANES) {
                    let leaves = match &self.layout {
                        Layout::Complete {
                            depth,
                            splits,
                            leaves,
                        } => {
                            let at = first << depth..(first + LANES) << depth;
                            walk_trees_complete::<T, C>(
                                *depth,
                                &splits[at.clone()],
                                &leaves[at],
                                row,
                            )
                        }
                        Layout::General {
                            nodes,
                            n_internal,
                            roots,
                            max_depth,
                        } => walk_trees_general::<T, C>(
                            nodes,
                            *n_internal,
                            &roots[first..first + LANES],
                            *max_depth,
                            row,
                        ),
                    };
                    let live = LANES.min(self.n_trees - first);
                    for &leaf in &leaves[..live] {
                        self.fold_leaf(leaf as usize, r, score, has);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn fold_leaf(&self, leaf: usize, row: usize, score: &mut [T], has: &mut [bool]) {
        match self.fold {
            Fold::SingleSum => score[row] = score[row] + self.leaf_first[leaf],
            Fold::SingleMin | Fold::SingleMax => {
                let w = self.leaf_first[leaf];
                let better = if self.fold == Fold::SingleMin {
                    w < score[row]
                } else {
                    w > score[row]
                };
                if !has[row] || better {
                    score[row] = w;
                }
                has[row] = true;
            }
            Fold::SumOne => {
                let s = row * self.slots + self.leaf_first_target[leaf] as usize;
                score[s] = score[s] + self.leaf_first[leaf];
                has[s] = true;
            }
            Fold::Sum | Fold::Min | Fold::Max => {
                let range = self.leaf_start[leaf] as usize..self.leaf_start[leaf + 1] as usize;
                let base = row * self.slots;
                for (&t, &w) in self.leaf_targets[range.clone()]
                    .iter()
                    .zip(&self.leaf_weights[range])
                {
                    let s = base + t as usize;
                    match self.fold {
                        Fold::Min => {
                            if !has[s] || w < score[s] {
                                score[s] = w;
                            }
                        }
                        Fold::Max => {
                            if !has[s] || w > score[s] {
                                score[s] = w;
                            }
                        }
                        _ => score[s] = score[s] + w,
                    }
                    has[s] = true;
                }
            }
        }
    }
}

/// Pads every tree to a complete tree of the forest's depth, when the forest is shallow enough
/// and the padding costs at most a few times the general layout's memory.
fn complete_layout<T: Value>(spec: &Spec) -> Option<Layout<T>> {
    let depth = spec.max_depth;
    if depth > MAX_COMPLETE_DEPTH {
        return None;
    }
    let size = 1usize << depth;
    let padded_trees = spec.n_trees().div_ceil(LANES) * LANES;
    let total = padded_trees.checked_mul(size)?;
    if total > 4 * spec.nodes.len() + 4096 {
        return None;
    }
    // A neutral split: feature 0, and both sides lead to the same leaf, so its outcome does
    // not matter (feature 0 exists whenever the forest has a branch at all).
    let mut splits = vec![
        Split {
            threshold: T::ZERO,
            packed: 0
        };
        total
    ];
    let mut leaves = vec![0u32; total];
    let mut stack: Vec<(usize, usize, u32)> = Vec::new();
    for (t, &root) in spec.roots.iter().enumerate() {
        let base = t << depth;
        stack.push((root as usize, 0, 0));
        while let Some((node, pos, level)) = stack.pop() {
            let is_leaf = node >= spec.n_internal;
            if level == depth {
                // No path has more than `depth` branches, so this is a leaf.
                if !is_leaf {
                    return None;
                }
                leaves[base + pos - (size - 1)] = (node - spec.n_internal) as u32;
                continue;
            }
            let children = if is_leaf {
                [node, node]
            } else {
                let n = &spec.nodes[node];
                splits[base + pos] = Split {
                    threshold: T::from_f64(n.threshold),
                    packed: pack(n.feature, n.cmp),
                };
                n.children.map(|c| c as usize)
            };
            stack.push((children[0], 2 * pos + 1, level + 1));
            stack.push((children[1], 2 * pos + 2, level + 1));
        }
    }
    Some(Layout::Complete {
        depth,
        splits,
        leaves,
    })
}

fn general_layout<T: Value>(spec: &Spec) -> Layout<T> {
    let nodes = spec
        .nodes
        .iter()
        .map(|n| Node {
            threshold: T::from_f64(n.threshold),
            packed: pack(n.feature, n.cmp),
            children: n.children,
        })
        .collect();
    let mut roots = spec.roots.clone();
    let last = roots.last().copied().unwrap_or(0);
    roots.resize(spec.n_trees().div_ceil(LANES) * LANES, last);
    Layout::General {
        nodes,
        n_internal: spec.n_internal as u32,
        roots,
        max_depth: spec.max_depth,
    }
}

/// One complete tree (`splits`, `leaves`: its `2^depth` slots) on `LANES` rows transposed to
/// `[feature][lane]`; returns the leaf each lane reached.
#[inline(always)]
fn walk_rows_complete<T: Value, const C: u8>(
    depth: u32,
    splits: &[Split<T>],
    leaves: &[u32],
    xt: &[T],
) -> [u32; LANES] {
    let mut pos = [0usize; LANES];
    for _ in 0..depth {
        for (k, p) in pos.iter_mut().enumerate() {
            let split = &splits[*p];
            let v = xt[(split.packed & FEATURE_MASK) as usize * LANES + k];
            *p = 2 * *p + 1 + usize::from(!goes_true::<T, C>(split.packed, v, split.threshold));
        }
    }
    let first_leaf = (1usize << depth) - 1;
    pos.map(|p| leaves[p - first_leaf])
}

/// `LANES` consecutive complete trees (`splits`, `leaves`: their slots, tree after tree) on one
/// row; returns the leaf each tree reached.
#[inline(always)]
fn walk_trees_complete<T: Value, const C: u8>(
    depth: u32,
    splits: &[Split<T>],
    leaves: &[u32],
    row: &[T],
) -> [u32; LANES] {
    let mut pos: [usize; LANES] = std::array::from_fn(|k| k << depth);
    for _ in 0..depth {
        for (k, p) in pos.iter_mut().enumerate() {
            let split = &splits[*p];
            let v = row[(split.packed & FEATURE_MASK) as usize];
            // Within tree k (which starts at k << depth), position i has children 2i + 1 and
            // 2i + 2.
            let local = *p - (k << depth);
            *p = (k << depth)
                + 2 * local
                + 1
                + usize::from(!goes_true::<T, C>(split.packed, v, split.threshold));
        }
    }
    let first_leaf = (1usize << depth) - 1;
    pos.map(|p| leaves[p - first_leaf])
}

/// One tree of the general layout (from `root`) on `LANES` rows transposed to
/// `[feature][lane]`, until every lane stands on a leaf. `max_depth` bounds the loop: no path has
/// more branch nodes (cycles were refused when the spec was built).
#[inline(always)]
fn walk_rows_general<T: Value, const C: u8>(
    nodes: &[Node<T>],
    n_internal: u32,
    root: u32,
    max_depth: u32,
    xt: &[T],
) -> [u32; LANES] {
    let mut idx = [root; LANES];
    for _ in 0..max_depth {
        if idx.iter().all(|&i| i >= n_internal) {
            break;
        }
        for (k, i) in idx.iter_mut().enumerate() {
            let node = &nodes[*i as usize];
            let v = xt[(node.packed & FEATURE_MASK) as usize * LANES + k];
            *i = node.children[usize::from(!goes_true::<T, C>(node.packed, v, node.threshold))];
        }
    }
    idx.map(|i| i - n_internal)
}

/// `LANES` trees of the general layout (from `roots`) on one row, until every lane stands on a
/// leaf.
#[inline(always)]
fn walk_trees_general<T: Value, const C: u8>(
    nodes: &[Node<T>],
    n_internal: u32,
    roots: &[u32],
    max_depth: u32,
    row: &[T],
) -> [u32; LANES] {
    let mut idx: [u32; LANES] = std::array::from_fn(|k| roots[k]);
    for _ in 0..max_depth {
        if idx.iter().all(|&i| i >= n_internal) {
            break;
        }
        for i in idx.iter_mut() {
            let node = &nodes[*i as usize];
            let v = row[(node.packed & FEATURE_MASK) as usize];
            *i = node.children[usize::from(!goes_true::<T, C>(node.packed, v, node.threshold))];
        }
    }
    idx.map(|i| i - n_internal)
}
