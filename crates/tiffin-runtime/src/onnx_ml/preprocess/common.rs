//! What the preprocessing operators share: their typed error, reading a node's attributes with
//! errors that name the attribute, and small helpers for facts and tensors.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

/// The ONNX domain of every operator in this module.
pub(crate) const ML_DOMAIN: &str = "ai.onnx.ml";

/// Why an ai.onnx.ml node cannot be loaded, typed or run. Every variant names the operator and
/// the node; the problem says what was found and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MlOpError {
    /// An attribute is missing, malformed or disagrees with another one (found at load).
    #[error("{op} node `{node}`: attribute `{attribute}` {problem}")]
    Attribute {
        op: &'static str,
        node: String,
        attribute: String,
        problem: String,
    },
    /// The node's inputs have a type or shape the operator does not take (found when the model
    /// is typed, once the input facts are known).
    #[error("{op} node `{node}`: {problem}")]
    Input {
        op: &'static str,
        node: String,
        problem: String,
    },
    /// A value met while running that the operator refuses, as onnxruntime does.
    #[error("{op} node `{node}`: {problem}")]
    Value {
        op: &'static str,
        node: String,
        problem: String,
    },
}

/// The name a node goes by in errors: its own name, else its first output's.
pub(crate) fn node_label(node: &NodeProto) -> String {
    if !node.name.is_empty() {
        node.name.clone()
    } else {
        node.output
            .first()
            .cloned()
            .unwrap_or_else(|| "<unnamed>".into())
    }
}

/// Who raises an error: the operator and the node, carried by every op so that errors raised
/// while typing or running can name them too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    pub(crate) op: &'static str,
    pub(crate) node: String,
}

impl Site {
    pub(crate) fn attribute(&self, attribute: &str, problem: impl Into<String>) -> MlOpError {
        MlOpError::Attribute {
            op: self.op,
            node: self.node.clone(),
            attribute: attribute.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn input(&self, problem: impl Into<String>) -> MlOpError {
        MlOpError::Input {
            op: self.op,
            node: self.node.clone(),
            problem: problem.into(),
        }
    }

    pub(crate) fn value(&self, problem: impl Into<String>) -> MlOpError {
        MlOpError::Value {
            op: self.op,
            node: self.node.clone(),
            problem: problem.into(),
        }
    }

    /// Refuses a dtype outside `allowed` (what onnxruntime implements for the operator).
    pub(crate) fn check_dtype(
        &self,
        what: &str,
        dt: DatumType,
        allowed: &[DatumType],
    ) -> Result<(), MlOpError> {
        if allowed.contains(&dt) {
            Ok(())
        } else {
            Err(self.unsupported_dtype(what, dt, allowed))
        }
    }

    /// The error for a dtype outside `allowed`.
    pub(crate) fn unsupported_dtype(
        &self,
        what: &str,
        dt: DatumType,
        allowed: &[DatumType],
    ) -> MlOpError {
        let names: Vec<String> = allowed.iter().map(|d| format!("{d:?}")).collect();
        self.input(format!(
            "{what} is {dt:?}, but this operator takes {}",
            names.join(", ")
        ))
    }

    /// Refuses a rank outside `min..=max`.
    pub(crate) fn check_rank(
        &self,
        what: &str,
        rank: usize,
        min: usize,
        max: usize,
    ) -> Result<(), MlOpError> {
        if (min..=max).contains(&rank) {
            Ok(())
        } else {
            Err(self.input(format!(
                "{what} has rank {rank}, but this operator takes rank {min} to {max}"
            )))
        }
    }
}

/// Reads one node's attributes. Absent attributes are `None`; an attribute of the wrong type
/// is an error naming it, never silently ignored.
pub(crate) struct Attrs<'a> {
    pub(crate) site: Site,
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    /// Starts reading `node`, which must be the ai.onnx.ml operator `op`: tract's operator table
    /// is keyed by name alone, so a same-named operator of another domain would land here.
    pub(crate) fn new(op: &'static str, node: &'a NodeProto) -> Result<Attrs<'a>, MlOpError> {
        let site = Site {
            op,
            node: node_label(node),
        };
        if node.domain != ML_DOMAIN {
            return Err(site.input(format!(
                "the node's domain is `{}`, but tiffin implements {op} of `{ML_DOMAIN}` only",
                node.domain
            )));
        }
        Ok(Attrs { site, node })
    }

    pub(crate) fn error(&self, attribute: &str, problem: impl Into<String>) -> MlOpError {
        self.site.attribute(attribute, problem)
    }

    fn get(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>, MlOpError> {
        let Some(attr) = self.node.attribute.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        match AttributeType::try_from(attr.r#type) {
            Ok(found) if found == ty => Ok(Some(attr)),
            Ok(found) => Err(self.error(
                name,
                format!("is {}, but it must be {}", type_name(found), type_name(ty)),
            )),
            Err(_) => Err(self.error(
                name,
                format!(
                    "has the unknown attribute type {}; it must be {}",
                    attr.r#type,
                    type_name(ty)
                ),
            )),
        }
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, MlOpError> {
        Ok(self
            .get(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, MlOpError> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, MlOpError> {
        let Some(attr) = self.get(name, AttributeType::Strings)? else {
            return Ok(None);
        };
        attr.strings
            .iter()
            .enumerate()
            .map(|(ix, s)| {
                String::from_utf8(s.clone())
                    .map_err(|_| self.error(name, format!("value {ix} is not valid UTF-8")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, MlOpError> {
        Ok(self.get(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, MlOpError> {
        Ok(self.get(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, MlOpError> {
        let Some(attr) = self.get(name, AttributeType::String)? else {
            return Ok(None);
        };
        String::from_utf8(attr.s.clone())
            .map(Some)
            .map_err(|_| self.error(name, "is not valid UTF-8"))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, MlOpError> {
        let Some(attr) = self.get(name, AttributeType::Tensor)? else {
            return Ok(None);
        };
        match &attr.t {
            Some(t) => Ok(Some(t)),
            None => Err(self.error(name, "is a tensor attribute without its tensor")),
        }
    }
}

fn type_name(ty: AttributeType) -> &'static str {
    match ty {
        AttributeType::Float => "a float",
        AttributeType::Int => "an int",
        AttributeType::String => "a string",
        AttributeType::Tensor => "a tensor",
        AttributeType::Floats => "a list of floats",
        AttributeType::Ints => "a list of ints",
        AttributeType::Strings => "a list of strings",
        _ => "another kind of attribute",
    }
}

/// The ai.onnx.ml opset the model imports, if it names one.
pub(crate) fn ml_opset(ctx: &ParsingContext) -> Option<i64> {
    ctx.model
        .opset_import
        .iter()
        .find(|o| o.domain == ML_DOMAIN)
        .map(|o| o.version)
}

/// A concrete dimension, or an error saying the operator needs it known.
pub(crate) fn concrete_dim(site: &Site, what: &str, dim: &TDim) -> Result<usize, MlOpError> {
    dim.to_usize().map_err(|_| {
        site.input(format!(
            "{what} is `{dim}`, but this operator needs it known when the model is loaded; \
             declare the input with a fixed size on that axis"
        ))
    })
}

/// The values of a plain tensor as a slice.
pub(crate) fn values<T: Datum>(t: &Tensor) -> TractResult<&[T]> {
    t.try_as_plain_ram()?.as_slice::<T>()
}

/// A tensor of `shape` from row-major values.
pub(crate) fn tensor_from<T: Datum>(shape: &[usize], data: Vec<T>) -> TractResult<Tensor> {
    Ok(tract_ndarray::ArrayD::from_shape_vec(shape, data)?.into_tensor())
}
