//! Reading and checking the attributes of an ONNX-ML `TreeEnsembleClassifier` or
//! `TreeEnsembleRegressor` node (ai.onnx.ml opsets 1 and 3) into a flat, validated forest.
//!
//! Everything a model file could get wrong is refused here, at load time, with an error naming
//! the attribute: arrays whose lengths disagree, children or leaf weights pointing at nodes that
//! do not exist, class or target ids out of range, cycles. What comes out can be evaluated
//! without a bounds failure or an endless loop; only the input width is checked later, when the
//! input shape is known.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

/// Which of the two operators a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Classifier,
    Regressor,
}

impl Which {
    pub(crate) fn op_name(self) -> &'static str {
        match self {
            Which::Classifier => "TreeEnsembleClassifier",
            Which::Regressor => "TreeEnsembleRegressor",
        }
    }

    /// The prefix of the leaf attributes: `class_ids`, `class_weights`, ... or `target_ids`, ...
    fn leaf_prefix(self) -> &'static str {
        match self {
            Which::Classifier => "class",
            Which::Regressor => "target",
        }
    }
}

/// Everything wrong with a tree ensemble node that tiffin refuses to load.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TreeError {
    #[error(
        "{op}: the node is in domain {domain:?}; tree ensembles are only defined in \"ai.onnx.ml\""
    )]
    Domain { op: &'static str, domain: String },
    #[error("{op}: required attribute `{attr}` is missing; the exporter must write it")]
    Missing { op: &'static str, attr: String },
    #[error("{op}: attribute `{attr}` is of type {found}, expected {expected}")]
    WrongType {
        op: &'static str,
        attr: String,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{op}: attribute `{attr}` appears more than once; an ONNX node holds each attribute once"
    )]
    Duplicate { op: &'static str, attr: String },
    #[error(
        "{op}: attribute `{attr}` has {len} values but `{reference}` has {expected}; \
         they describe the same {what} and must have one value each"
    )]
    Length {
        op: &'static str,
        attr: String,
        len: usize,
        reference: String,
        expected: usize,
        what: &'static str,
    },
    #[error("{op}: `{attr}` and `{other}` are both set; give only one of them")]
    Both {
        op: &'static str,
        attr: String,
        other: String,
    },
    #[error("{op}: `{attr}`: {reason}")]
    Invalid {
        op: &'static str,
        attr: String,
        reason: String,
    },
    #[error("{op}: `{attr}`[{index}] = {value}: {reason}")]
    Value {
        op: &'static str,
        attr: String,
        index: usize,
        value: String,
        reason: String,
    },
    #[error(
        "{op}: the nodes of tree {tree} form a cycle through node {node} \
         (`nodes_truenodeids` / `nodes_falsenodeids`); a tree must not lead back to a node it left"
    )]
    Cycle {
        op: &'static str,
        tree: i64,
        node: i64,
    },
}

/// How a branch node compares the feature `x` with its threshold `t`, with the node's
/// missing-value rule folded in: "x <= t, or x is NaN" is `!(x > t)`, and so on, so that
/// every node is one comparison.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Leq = 0,
    Lt = 1,
    Gte = 2,
    Gt = 3,
    Eq = 4,
    Neq = 5,
    LeqOrNan = 6,
    LtOrNan = 7,
    GteOrNan = 8,
    GtOrNan = 9,
    EqOrNan = 10,
}

impl Cmp {
    /// The comparison for an ONNX mode and missing-value rule, or `None` for a leaf.
    fn from_mode(mode: &str, nan_goes_true: bool) -> Option<Option<Cmp>> {
        let cmp = match (mode, nan_goes_true) {
            ("LEAF", _) => return Some(None),
            ("BRANCH_LEQ", false) => Cmp::Leq,
            ("BRANCH_LT", false) => Cmp::Lt,
            ("BRANCH_GTE", false) => Cmp::Gte,
            ("BRANCH_GT", false) => Cmp::Gt,
            ("BRANCH_EQ", false) => Cmp::Eq,
            ("BRANCH_LEQ", true) => Cmp::LeqOrNan,
            ("BRANCH_LT", true) => Cmp::LtOrNan,
            ("BRANCH_GTE", true) => Cmp::GteOrNan,
            ("BRANCH_GT", true) => Cmp::GtOrNan,
            ("BRANCH_EQ", true) => Cmp::EqOrNan,
            // NaN != t already holds, so the missing-value rule changes nothing.
            ("BRANCH_NEQ", _) => Cmp::Neq,
            _ => return None,
        };
        Some(Some(cmp))
    }
}

/// How the regressor combines the trees' values (the classifier always sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// The function applied to the aggregated scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Post {
    None,
    Softmax,
    Logistic,
    SoftmaxZero,
    Probit,
}

/// The classifier's labels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Labels {
    Int(Vec<i64>),
    Str(Vec<String>),
}

/// One node of the flattened forest. Leaves are nodes too: both their children are themselves,
/// so a walk that reached a leaf stays there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FlatNode {
    pub(crate) feature: u32,
    pub(crate) cmp: Cmp,
    pub(crate) threshold: f64,
    /// `[child if the comparison holds, child otherwise]`, as indices into the flat nodes.
    pub(crate) children: [u32; 2],
}

/// Feature ids above this cannot be packed next to the comparison in one `u32`.
pub(crate) const MAX_FEATURE: u32 = (1 << 28) - 1;

/// A validated tree ensemble, independent of the input's float type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub(crate) which: Which,
    /// Classes (classifier) or targets (regressor): the width of the scores.
    pub(crate) n_outputs: usize,
    /// `Some` for the classifier.
    pub(crate) labels: Option<Labels>,
    pub(crate) aggregate: Aggregate,
    pub(crate) post: Post,
    pub(crate) base_values: Vec<f64>,
    /// onnxruntime's "binary case": two classes and every leaf weight for the same class id.
    pub(crate) binary_case: bool,
    /// No leaf weight is negative (onnxruntime then reads a single score as a probability).
    pub(crate) weights_all_positive: bool,
    /// The largest feature id a reachable branch reads, if any node is a branch.
    pub(crate) max_feature: Option<u32>,
    /// Reachable branch nodes first (each tree's in depth-first order), then the leaves.
    pub(crate) nodes: Vec<FlatNode>,
    pub(crate) n_internal: usize,
    /// The root of each tree, in the order the trees first appear in `nodes_treeids`.
    pub(crate) roots: Vec<u32>,
    /// The most branch nodes on any root-to-leaf path.
    pub(crate) max_depth: u32,
    /// The comparison every branch uses, when they all use the same one.
    pub(crate) uniform_cmp: Option<Cmp>,
    /// Leaf `l` (flat node `n_internal + l`) holds weights `leaf_start[l]..leaf_start[l + 1]`.
    pub(crate) leaf_start: Vec<u32>,
    pub(crate) leaf_targets: Vec<u32>,
    pub(crate) leaf_weights: Vec<f64>,
}

impl Spec {
    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub(crate) fn n_leaves(&self) -> usize {
        self.nodes.len() - self.n_internal
    }
}

/// The attributes of one node, read with type checks and errors naming the attribute.
struct Attrs<'a> {
    op: &'static str,
    by_name: HashMap<&'a str, &'a AttributeProto>,
}

fn type_name(t: i32) -> String {
    match AttributeType::try_from(t) {
        Ok(t) => t.as_str_name().to_lowercase(),
        Err(_) => format!("unknown type {t}"),
    }
}

impl<'a> Attrs<'a> {
    fn new(op: &'static str, node: &'a NodeProto) -> Result<Self, TreeError> {
        let mut by_name = HashMap::new();
        for a in &node.attribute {
            if by_name.insert(a.name.as_str(), a).is_some() {
                return Err(TreeError::Duplicate {
                    op,
                    attr: a.name.clone(),
                });
            }
        }
        Ok(Attrs { op, by_name })
    }

    fn typed(
        &self,
        name: &str,
        t: AttributeType,
        expected: &'static str,
    ) -> Result<Option<&'a AttributeProto>, TreeError> {
        match self.by_name.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == t as i32 => Ok(Some(*a)),
            Some(a) => Err(TreeError::WrongType {
                op: self.op,
                attr: name.to_string(),
                found: type_name(a.r#type),
                expected,
            }),
        }
    }

    fn missing(&self, name: &str) -> TreeError {
        TreeError::Missing {
            op: self.op,
            attr: name.to_string(),
        }
    }

    /// A list of ints; an empty list counts as absent.
    fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, TreeError> {
        let a = self.typed(name, AttributeType::Ints, "a list of ints")?;
        Ok(a.map(|a| a.ints.as_slice()).filter(|v| !v.is_empty()))
    }

    fn req_ints(&self, name: &str) -> Result<&'a [i64], TreeError> {
        self.ints(name)?.ok_or_else(|| self.missing(name))
    }

    fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, TreeError> {
        let a = self.typed(name, AttributeType::Floats, "a list of floats")?;
        Ok(a.map(|a| a.floats.as_slice()).filter(|v| !v.is_empty()))
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, TreeError> {
        let Some(a) = self.typed(name, AttributeType::Strings, "a list of strings")? else {
            return Ok(None);
        };
        let strings = a
            .strings
            .iter()
            .enumerate()
            .map(|(index, s)| {
                String::from_utf8(s.clone()).map_err(|_| TreeError::Value {
                    op: self.op,
                    attr: name.to_string(),
                    index,
                    value: format!("{:?}", String::from_utf8_lossy(s)),
                    reason: "not valid UTF-8".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(strings).filter(|v| !v.is_empty()))
    }

    fn string(&self, name: &str) -> Result<Option<String>, TreeError> {
        let Some(a) = self.typed(name, AttributeType::String, "a string")? else {
            return Ok(None);
        };
        String::from_utf8(a.s.clone())
            .map(Some)
            .map_err(|_| TreeError::Invalid {
                op: self.op,
                attr: name.to_string(),
                reason: "not valid UTF-8".into(),
            })
    }

    fn int(&self, name: &str) -> Result<Option<i64>, TreeError> {
        Ok(self.typed(name, AttributeType::Int, "an int")?.map(|a| a.i))
    }

    fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, TreeError> {
        match self.typed(name, AttributeType::Tensor, "a tensor")? {
            None => Ok(None),
            Some(a) => a.t.as_ref().map(Some).ok_or_else(|| TreeError::Invalid {
                op: self.op,
                attr: name.to_string(),
                reason: "the attribute is of type tensor but holds no tensor".into(),
            }),
        }
    }

    /// Values given either as a float list `name` or (ai.onnx.ml opset 3) as a float or double
    /// tensor `name_as_tensor`; at most one of the two.
    fn values(
        &self,
        name: &str,
        load: &dyn Fn(&TensorProto) -> Result<Vec<f64>, String>,
    ) -> Result<Option<(String, Vec<f64>)>, TreeError> {
        let tensor_name = format!("{name}_as_tensor");
        let floats = self.floats(name)?;
        let tensor = self.tensor(&tensor_name)?;
        match (floats, tensor) {
            (Some(_), Some(_)) => Err(TreeError::Both {
                op: self.op,
                attr: name.to_string(),
                other: tensor_name,
            }),
            (Some(f), None) => Ok(Some((
                name.to_string(),
                f.iter().map(|&v| f64::from(v)).collect(),
            ))),
            (None, Some(t)) => {
                let v = load(t).map_err(|reason| TreeError::Invalid {
                    op: self.op,
                    attr: tensor_name.clone(),
                    reason,
                })?;
                Ok(Some((tensor_name, v)).filter(|(_, v)| !v.is_empty()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Checks that an attribute has the expected number of values.
fn check_len(
    op: &'static str,
    attr: &str,
    len: usize,
    reference: &str,
    expected: usize,
    what: &'static str,
) -> Result<(), TreeError> {
    if len == expected {
        Ok(())
    } else {
        Err(TreeError::Length {
            op,
            attr: attr.to_string(),
            len,
            reference: reference.to_string(),
            expected,
            what,
        })
    }
}

/// Reads and validates a tree ensemble node. `load` turns a tensor attribute into its values
/// (the caller has the model's tensor loader).
pub(crate) fn parse(
    node: &NodeProto,
    which: Which,
    load: &dyn Fn(&TensorProto) -> Result<Vec<f64>, String>,
) -> Result<Spec, TreeError> {
    let op = which.op_name();
    if node.domain != "ai.onnx.ml" {
        return Err(TreeError::Domain {
            op,
            domain: node.domain.clone(),
        });
    }
    let a = Attrs::new(op, node)?;
    let invalid = |attr: &str, reason: String| TreeError::Invalid {
        op,
        attr: attr.to_string(),
        reason,
    };
    let bad_value = |attr: &str, index: usize, value: String, reason: String| TreeError::Value {
        op,
        attr: attr.to_string(),
        index,
        value,
        reason,
    };

    // What the scores are: classes with labels, or regression targets.
    let (labels, n_outputs) = match which {
        Which::Classifier => {
            let labels = match (
                a.ints("classlabels_int64s")?,
                a.strings("classlabels_strings")?,
            ) {
                (Some(i), None) => Labels::Int(i.to_vec()),
                (None, Some(s)) => Labels::Str(s),
                (Some(_), Some(_)) => {
                    return Err(TreeError::Both {
                        op,
                        attr: "classlabels_int64s".into(),
                        other: "classlabels_strings".into(),
                    });
                }
                (None, None) => {
                    return Err(a.missing("classlabels_int64s` or `classlabels_strings"));
                }
            };
            let n = match &labels {
                Labels::Int(v) => v.len(),
                Labels::Str(v) => v.len(),
            };
            if n < 2 {
                let attr = match labels {
                    Labels::Int(_) => "classlabels_int64s",
                    Labels::Str(_) => "classlabels_strings",
                };
                return Err(invalid(
                    attr,
                    format!("{n} class label; a classifier needs at least two classes"),
                ));
            }
            (Some(labels), n)
        }
        Which::Regressor => {
            let n = a.int("n_targets")?.ok_or_else(|| a.missing("n_targets"))?;
            if n < 1 || n > i64::from(u32::MAX) {
                return Err(invalid(
                    "n_targets",
                    format!("{n}; a regressor has at least one target"),
                ));
            }
            (None, n as usize)
        }
    };

    let post = match a.string("post_transform")?.as_deref() {
        None | Some("NONE") => Post::None,
        Some("SOFTMAX") => Post::Softmax,
        Some("LOGISTIC") => Post::Logistic,
        Some("SOFTMAX_ZERO") => Post::SoftmaxZero,
        Some("PROBIT") => Post::Probit,
        Some(other) => {
            return Err(invalid(
                "post_transform",
                format!("{other:?} is not one of NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT"),
            ));
        }
    };
    // onnxruntime's classifier always sums, whatever the node says; only the regressor
    // reads `aggregate_function`.
    let aggregate = match which {
        Which::Classifier => Aggregate::Sum,
        Which::Regressor => match a.string("aggregate_function")?.as_deref() {
            None | Some("SUM") => Aggregate::Sum,
            Some("AVERAGE") => Aggregate::Average,
            Some("MIN") => Aggregate::Min,
            Some("MAX") => Aggregate::Max,
            Some(other) => {
                return Err(invalid(
                    "aggregate_function",
                    format!("{other:?} is not one of SUM, AVERAGE, MIN, MAX"),
                ));
            }
        },
    };

    // The nodes: one value per node in every nodes_* attribute.
    let tree_ids = a.req_ints("nodes_treeids")?;
    let n_nodes = tree_ids.len();
    let node_ids = a.req_ints("nodes_nodeids")?;
    let feature_ids = a.req_ints("nodes_featureids")?;
    let true_ids = a.req_ints("nodes_truenodeids")?;
    let false_ids = a.req_ints("nodes_falsenodeids")?;
    let modes = a
        .strings("nodes_modes")?
        .ok_or_else(|| a.missing("nodes_modes"))?;
    let (values_attr, values) = a
        .values("nodes_values", load)?
        .ok_or_else(|| a.missing("nodes_values"))?;
    for (attr, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_modes", modes.len()),
        (values_attr.as_str(), values.len()),
    ] {
        check_len(op, attr, len, "nodes_treeids", n_nodes, "nodes")?;
    }
    let tracks_true = match a.ints("nodes_missing_value_tracks_true")? {
        None => vec![false; n_nodes],
        Some(v) => {
            check_len(
                op,
                "nodes_missing_value_tracks_true",
                v.len(),
                "nodes_treeids",
                n_nodes,
                "nodes",
            )?;
            v.iter()
                .enumerate()
                .map(|(i, &t)| match t {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(bad_value(
                        "nodes_missing_value_tracks_true",
                        i,
                        t.to_string(),
                        "must be 0 or 1".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };

    // Node kinds, and the (tree, node) -> index map.
    let mut cmps: Vec<Option<Cmp>> = Vec::with_capacity(n_nodes);
    for (i, mode) in modes.iter().enumerate() {
        let cmp = Cmp::from_mode(mode, tracks_true[i]).ok_or_else(|| {
            bad_value(
                "nodes_modes",
                i,
                format!("{mode:?}"),
                "not one of BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF".into(),
            )
        })?;
        cmps.push(cmp);
    }
    if n_nodes > (u32::MAX / 2) as usize {
        return Err(invalid(
            "nodes_treeids",
            format!(
                "{n_nodes} nodes; tiffin handles at most {} per ensemble",
                u32::MAX / 2
            ),
        ));
    }
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n_nodes);
    let mut trees_seen: HashSet<i64> = HashSet::new();
    let mut roots_orig: Vec<usize> = Vec::new();
    for i in 0..n_nodes {
        let key = (tree_ids[i], node_ids[i]);
        if index.insert(key, i).is_some() {
            return Err(bad_value(
                "nodes_nodeids",
                i,
                node_ids[i].to_string(),
                format!(
                    "tree {} already has a node with this id; node ids must be unique within a tree",
                    tree_ids[i]
                ),
            ));
        }
        // onnxruntime takes the first node listed for a tree as its root.
        if trees_seen.insert(tree_ids[i]) {
            roots_orig.push(i);
        }
    }
    let mut children_orig: Vec<[usize; 2]> = vec![[0, 0]; n_nodes];
    for i in 0..n_nodes {
        if cmps[i].is_none() {
            continue;
        }
        let f = feature_ids[i];
        if f < 0 || f > i64::from(MAX_FEATURE) {
            return Err(bad_value(
                "nodes_featureids",
                i,
                f.to_string(),
                format!("a feature index must be between 0 and {MAX_FEATURE}"),
            ));
        }
        for (slot, (attr, ids)) in [
            ("nodes_truenodeids", true_ids),
            ("nodes_falsenodeids", false_ids),
        ]
        .into_iter()
        .enumerate()
        {
            let child = *index.get(&(tree_ids[i], ids[i])).ok_or_else(|| {
                bad_value(
                    attr,
                    i,
                    ids[i].to_string(),
                    format!("tree {} has no node with this id", tree_ids[i]),
                )
            })?;
            if child == i {
                return Err(TreeError::Cycle {
                    op,
                    tree: tree_ids[i],
                    node: node_ids[i],
                });
            }
            children_orig[i][slot] = child;
        }
    }

    // Leaf weights, in onnxruntime's order: by (tree, node), then as listed.
    let prefix = which.leaf_prefix();
    let ids_attr = format!("{prefix}_ids");
    let nodeids_attr = format!("{prefix}_nodeids");
    let treeids_attr = format!("{prefix}_treeids");
    let w_ids = a.req_ints(&ids_attr)?;
    let w_nodes = a.req_ints(&nodeids_attr)?;
    let w_trees = a.req_ints(&treeids_attr)?;
    let (w_attr, w_values) = a
        .values(&format!("{prefix}_weights"), load)?
        .ok_or_else(|| a.missing(&format!("{prefix}_weights")))?;
    for (attr, len) in [
        (nodeids_attr.as_str(), w_nodes.len()),
        (treeids_attr.as_str(), w_trees.len()),
        (w_attr.as_str(), w_values.len()),
    ] {
        check_len(op, attr, len, &ids_attr, w_ids.len(), "leaf weights")?;
    }
    let mut per_node: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n_nodes];
    let mut classes_seen: Vec<bool> = vec![false; n_outputs];
    let mut weights_all_positive = true;
    for j in 0..w_ids.len() {
        let id = w_ids[j];
        if id < 0 || id as u64 >= n_outputs as u64 {
            let what = match which {
                Which::Classifier => "class labels",
                Which::Regressor => "targets (n_targets)",
            };
            return Err(bad_value(
                &ids_attr,
                j,
                id.to_string(),
                format!("the node has {n_outputs} {what}"),
            ));
        }
        let n = *index.get(&(w_trees[j], w_nodes[j])).ok_or_else(|| {
            bad_value(
                &nodeids_attr,
                j,
                w_nodes[j].to_string(),
                format!("tree {} has no node with this id", w_trees[j]),
            )
        })?;
        classes_seen[id as usize] = true;
        // onnxruntime tests `w < 0`, so a NaN weight counts as positive.
        weights_all_positive &= w_values[j] >= 0.0 || w_values[j].is_nan();
        // onnxruntime ignores weights on branch nodes (old onnxmltools wrote some).
        if cmps[n].is_none() {
            per_node[n].push((id as u32, w_values[j]));
        }
    }
    for i in 0..n_nodes {
        if cmps[i].is_none() && per_node[i].is_empty() {
            return Err(invalid(
                &nodeids_attr,
                format!(
                    "leaf {} of tree {} has no weight; every LEAF node needs at least one entry in `{nodeids_attr}`",
                    node_ids[i], tree_ids[i]
                ),
            ));
        }
    }
    let binary_case = which == Which::Classifier
        && n_outputs == 2
        && classes_seen.iter().filter(|&&s| s).count() == 1;

    let base_values = match a.values("base_values", load)? {
        None => Vec::new(),
        Some((attr, v)) => {
            let allowed = match (which, n_outputs) {
                (Which::Classifier, 2) => matches!(v.len(), 1 | 2),
                _ => v.len() == n_outputs,
            };
            if !allowed {
                let want = match (which, n_outputs) {
                    (Which::Classifier, 2) => "1 or 2 values for a binary classifier".to_string(),
                    (Which::Classifier, n) => format!("one value per class ({n})"),
                    (Which::Regressor, n) => format!("one value per target ({n})"),
                };
                return Err(invalid(
                    &attr,
                    format!("has {} values; expected {want}", v.len()),
                ));
            }
            v
        }
    };

    let layout = Layout::build(op, &cmps, &children_orig, &roots_orig, tree_ids, node_ids)?;

    let mut max_feature = None;
    let mut uniform_cmp: Option<Option<Cmp>> = None;
    let mut nodes = Vec::with_capacity(layout.order.len());
    for (flat, &orig) in layout.order.iter().enumerate() {
        match cmps[orig] {
            Some(cmp) => {
                let feature = feature_ids[orig] as u32;
                max_feature = max_feature.max(Some(feature));
                uniform_cmp = match uniform_cmp {
                    None => Some(Some(cmp)),
                    Some(Some(c)) if c == cmp => Some(Some(c)),
                    Some(_) => Some(None),
                };
                let children = children_orig[orig].map(|c| layout.flat_of[c]);
                nodes.push(FlatNode {
                    feature,
                    cmp,
                    threshold: values[orig],
                    children,
                });
            }
            None => {
                let me = flat as u32;
                nodes.push(FlatNode {
                    feature: 0,
                    cmp: Cmp::Leq,
                    threshold: 0.0,
                    children: [me, me],
                });
            }
        }
    }
    let mut leaf_start = vec![0u32];
    let mut leaf_targets = Vec::new();
    let mut leaf_weights = Vec::new();
    for &orig in &layout.order[layout.n_internal..] {
        for &(t, w) in &per_node[orig] {
            leaf_targets.push(t);
            leaf_weights.push(w);
        }
        leaf_start.push(leaf_targets.len() as u32);
    }

    Ok(Spec {
        which,
        n_outputs,
        labels,
        aggregate,
        post,
        base_values,
        binary_case,
        weights_all_positive,
        max_feature,
        roots: roots_orig.iter().map(|&r| layout.flat_of[r]).collect(),
        nodes,
        n_internal: layout.n_internal,
        max_depth: layout.max_depth,
        uniform_cmp: uniform_cmp.flatten(),
        leaf_start,
        leaf_targets,
        leaf_weights,
    })
}

/// Where each reachable node goes in the flat arrays.
struct Layout {
    /// Original node index of each flat node: branches first, then leaves.
    order: Vec<usize>,
    n_internal: usize,
    /// Flat index of each original node (meaningless for unreachable ones).
    flat_of: Vec<u32>,
    max_depth: u32,
}

impl Layout {
    /// Walks every tree depth-first from its root with an explicit stack (no recursion, so a
    /// deep chain cannot overflow the stack), refusing cycles and measuring depth. A node reached
    /// twice without a cycle (a shared subtree) is placed once.
    fn build(
        op: &'static str,
        cmps: &[Option<Cmp>],
        children: &[[usize; 2]],
        roots: &[usize],
        tree_ids: &[i64],
        node_ids: &[i64],
    ) -> Result<Layout, TreeError> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let n = cmps.len();
        let mut state = vec![NEW; n];
        let mut depth = vec![0u32; n];
        let mut branches = Vec::new();
        let mut leaves = Vec::new();
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for &root in roots {
            let mut visit = |node: usize, stack: &mut Vec<(usize, usize)>, state: &mut [u8]| {
                state[node] = OPEN;
                if cmps[node].is_some() {
                    branches.push(node);
                } else {
                    leaves.push(node);
                }
                stack.push((node, 0));
            };
            visit(root, &mut stack, &mut state);
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if cmps[node].is_none() {
                    state[node] = DONE;
                    stack.pop();
                } else if *next < 2 {
                    let child = children[node][*next];
                    *next += 1;
                    match state[child] {
                        NEW => visit(child, &mut stack, &mut state),
                        OPEN => {
                            return Err(TreeError::Cycle {
                                op,
                                tree: tree_ids[child],
                                node: node_ids[child],
                            });
                        }
                        _ => {}
                    }
                } else {
                    let [t, f] = children[node];
                    depth[node] = 1 + depth[t].max(depth[f]);
                    state[node] = DONE;
                    stack.pop();
                }
            }
        }
        let max_depth = roots.iter().map(|&r| depth[r]).max().unwrap_or(0);
        let n_internal = branches.len();
        let mut order = branches;
        order.extend(leaves);
        let mut flat_of = vec![u32::MAX; n];
        for (flat, &orig) in order.iter().enumerate() {
            flat_of[orig] = flat as u32;
        }
        Ok(Layout {
            order,
            n_internal,
            flat_of,
            max_depth,
        })
    }
}
