//! [`Model`]: a model loaded once, checked against its package signature, optimized once and run
//! many times from many threads, with the inputs of every call checked before tract sees them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tiffin_manifest::{DType, Dim, ModelFormat, Signature};
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::optim::{Optimizer, OptimizerSession, TypedPass};

use crate::error::Error;
use crate::graph::{
    ModelSource, Parsed, Typed, concretized, confront, confront_concrete, may_type_per_shape,
    parse, reason,
};
use crate::tensor::{Tensor, TensorData};

/// The engine that runs a model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Runtime {
    /// tract: pure Rust, built into every tiffin, runs ONNX and NNEF models. The default.
    #[default]
    Tract,
    /// ONNX Runtime, loaded at run time from this library file (`libonnxruntime.so`, version
    /// 1.17 or later). Runs ONNX models only, and only in a tiffin built with the `ort`
    /// feature; one library per process.
    Ort {
        /// The library's path.
        library: PathBuf,
    },
}

impl Runtime {
    /// The runtime's name as the command line spells it: `tract` or `ort`.
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Tract => "tract",
            Runtime::Ort { .. } => "ort",
        }
    }

    /// Whether this build can run models with ONNX Runtime (the `ort` feature).
    pub fn ort_built_in() -> bool {
        cfg!(feature = "ort")
    }
}

/// How a [`Model`] is prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The engine that runs the model; tract unless asked otherwise.
    pub runtime: Runtime,
    /// How many plans concretized for one set of dynamic dim sizes (one batch size, say) are
    /// kept, least recently used first out; 0 runs every call on the one plan that takes any
    /// size. A size gets its own plan the first time it is seen, built on a background thread
    /// while calls keep running on the general plan; [`Model::prepare`] builds one up front.
    /// Models with several dynamic dims (an image's height and width) run several times faster
    /// on such plans. Models with over 256 MiB of weights get no cache whatever this says:
    /// the cache holds one more copy of them.
    pub plan_cache: usize,
    /// Threads one run's matrix products (convolutions and dense layers) are spread over; 1,
    /// the default, runs each call on the calling thread alone. More pays only for large
    /// products on a machine with idle cores: on 2 cores mnist_cnn at batch 64 ran slower
    /// with 2 (see docs/runtime.md), and a server already runs requests in parallel.
    pub threads: usize,
    /// ONNX Runtime sessions the model is loaded into, each with its own copy of the weights,
    /// so that that many calls run at once; 1, the default, runs calls in turn behind one lock
    /// (`Session::run` takes `&mut`). tract runs concurrent calls on one plan and ignores it.
    pub sessions: usize,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            runtime: Runtime::Tract,
            plan_cache: 8,
            threads: 1,
            sessions: 1,
        }
    }
}

impl LoadOptions {
    /// The options with `runtime` set.
    pub fn with_runtime(mut self, runtime: Runtime) -> LoadOptions {
        self.runtime = runtime;
        self
    }

    /// The options with `plan_cache` set.
    pub fn with_plan_cache(mut self, plans: usize) -> LoadOptions {
        self.plan_cache = plans;
        self
    }

    /// The options with `threads` set (0 counts as 1).
    pub fn with_threads(mut self, threads: usize) -> LoadOptions {
        self.threads = threads.max(1);
        self
    }

    /// The options with `sessions` set (0 counts as 1).
    pub fn with_sessions(mut self, sessions: usize) -> LoadOptions {
        self.sessions = sessions.max(1);
        self
    }
}

/// One axis of a declared input, as checked at run time.
#[derive(Debug, Clone, Copy)]
enum Axis {
    Fixed(usize),
    /// Index into [`Model::dims`].
    Named(usize),
}

/// A dynamic dim shared by the inputs.
#[derive(Debug, Clone)]
struct NamedDim {
    name: String,
    /// The tract symbol that stands for it; none when the graph computes it from others.
    symbol: Option<Symbol>,
}

type Plan = Arc<TypedRunnableModel>;

/// A model ready to run: `Send + Sync`, so one instance serves every thread and every batch size.
pub struct Model {
    signature: Signature,
    inputs: Vec<Vec<Axis>>,
    dims: Vec<NamedDim>,
    engine: Engine,
}

/// What runs the checked inputs.
enum Engine {
    Tract(TractPlans),
    /// tract, for a graph it cannot type with symbolic dims: typed and optimized per shape.
    PerShape(PerShape),
    #[cfg(feature = "ort")]
    Ort(crate::onnxruntime::OrtEngine),
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Tract(t) => f
                .debug_struct("Tract")
                .field("plan_cache", &t.plans.as_ref().map(|c| c.capacity))
                .field("multithreaded", &t.executor.is_some())
                .finish_non_exhaustive(),
            Engine::PerShape(p) => f
                .debug_struct("PerShape")
                .field("capacity", &p.capacity)
                .field("multithreaded", &p.executor.is_some())
                .finish_non_exhaustive(),
            #[cfg(feature = "ort")]
            Engine::Ort(engine) => engine.fmt(f),
        }
    }
}

/// A model as tract runs it.
struct TractPlans {
    /// The outputs' shapes as tract infers them, in terms of the dims' symbols.
    output_shapes: Vec<Vec<TDim>>,
    /// The plan that takes any size.
    plan: Plan,
    plans: Option<Arc<PlanCache>>,
    /// The thread pool runs spread their matrix products over, when `threads` > 1.
    executor: Option<Executor>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field(
                "inputs",
                &self
                    .signature
                    .inputs
                    .iter()
                    .map(|i| &i.name)
                    .collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self
                    .signature
                    .outputs
                    .iter()
                    .map(|o| &o.name)
                    .collect::<Vec<_>>(),
            )
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Reads the model, checks it against `signature` (every problem at once, as
    /// [`Error::Signature`]), types it with the signature's inputs (named dims become tract
    /// symbols, fixed dims fixed) and optimizes it. Operators neither tract nor tiffin implement
    /// are refused here, by name, rather than at the first run.
    pub fn load(
        source: &ModelSource,
        format: ModelFormat,
        signature: &Signature,
        options: &LoadOptions,
    ) -> Result<Model, Error> {
        if let Runtime::Ort { library } = &options.runtime {
            // Copied: ONNX Runtime takes the bytes over (only pack and the doctor load from a
            // borrowed source).
            let onnx = ort_source(source.clone(), format)?;
            return Model::load_ort(library, onnx, signature, options);
        }
        guarded("loading", || {
            let parsed = parse(source, format)?;
            Model::load_parsed(parsed, signature, options)
        })
    }

    /// [`Model::load`] taking the source, whose bytes are freed as soon as the graph is decoded:
    /// typing and optimizing a large model then holds its weights once less (a 1 GiB model's
    /// load peaked at three copies of them).
    pub fn load_owned(
        source: ModelSource,
        format: ModelFormat,
        signature: &Signature,
        options: &LoadOptions,
    ) -> Result<Model, Error> {
        if let Runtime::Ort { library } = &options.runtime {
            let onnx = ort_source(source, format)?;
            return Model::load_ort(library, onnx, signature, options);
        }
        guarded("loading", move || {
            let parsed = parse(&source, format)?;
            drop(source);
            Model::load_parsed(parsed, signature, options)
        })
    }

    /// Loads an ONNX model into ONNX Runtime, checked against the signature.
    #[cfg(feature = "ort")]
    fn load_ort(
        library: &std::path::Path,
        onnx: ModelSource,
        signature: &Signature,
        options: &LoadOptions,
    ) -> Result<Model, Error> {
        let engine = guarded("loading", || {
            crate::onnxruntime::OrtEngine::load(
                library,
                onnx,
                signature,
                options.threads,
                options.sessions,
            )
        })?;
        let (inputs, dims) = declared_axes(signature);
        Ok(Model {
            signature: signature.clone(),
            inputs,
            dims,
            engine: Engine::Ort(engine),
        })
    }

    #[cfg(not(feature = "ort"))]
    fn load_ort(
        _library: &std::path::Path,
        _onnx: ModelSource,
        _signature: &Signature,
        _options: &LoadOptions,
    ) -> Result<Model, Error> {
        Err(Error::RuntimeUnavailable(
            "this tiffin is built without ONNX Runtime; use a build with the `ort` feature (the dynamically linked release), or run with tract".into(),
        ))
    }

    /// The runtime running this model.
    pub fn runtime(&self) -> &'static str {
        match &self.engine {
            Engine::Tract(_) | Engine::PerShape(_) => "tract",
            #[cfg(feature = "ort")]
            Engine::Ort(_) => "ort",
        }
    }

    /// How many runs of this model make progress at once: for ONNX Runtime the sessions it is
    /// loaded into (each takes one call at a time; more callers wait for one), `None` for tract,
    /// whose runs share nothing mutable and go as wide as the caller's threads. A batcher
    /// closes a batch only once a run can start, so that the requests arriving meanwhile join
    /// it rather than a batch that would wait.
    pub fn parallel_runs(&self) -> Option<usize> {
        match &self.engine {
            Engine::Tract(_) | Engine::PerShape(_) => None,
            #[cfg(feature = "ort")]
            Engine::Ort(engine) => Some(engine.sessions()),
        }
    }

    /// The named dims tract types and optimizes the model for one size at a time, because it
    /// cannot type the graph with them as symbols (the first call of each new combination of
    /// sizes builds its plan); empty when the model runs on one plan for every size.
    pub fn per_shape_dims(&self) -> Vec<&str> {
        match &self.engine {
            Engine::PerShape(_) => self.dims.iter().map(|d| d.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    fn load_parsed(
        parsed: Parsed,
        signature: &Signature,
        options: &LoadOptions,
    ) -> Result<Model, Error> {
        let Typed { model, symbols } = match confront(&parsed, signature) {
            Ok(typed) => typed,
            Err(e) if may_type_per_shape(&parsed, signature, &e) => {
                return Model::load_per_shape(parsed, signature, options, e);
            }
            Err(e) => return Err(e),
        };
        let model = parsed.declutter(model)?;
        drop(parsed);
        let dims: Vec<NamedDim> = symbols
            .into_iter()
            .map(|(name, symbol)| NamedDim { name, symbol })
            .collect();
        let inputs = input_axes(signature, &dims)?;
        let output_shapes = (0..signature.outputs.len())
            .map(|ix| {
                let fact = model
                    .output_fact(ix)
                    .map_err(|e| Error::Typing { reason: reason(&e) })?;
                Ok(fact.shape.iter().cloned().collect())
            })
            .collect::<Result<_, Error>>()?;
        // The cache keeps the decluttered model to concretize from: one more copy of the
        // weights beside the plan's own (packed) copy, which a large model cannot afford.
        let large = weight_bytes(&model) > PLAN_CACHE_MAX_WEIGHTS;
        let (mut optimized, kept) = if options.plan_cache > 0 && !large {
            (model.clone(), Some(model))
        } else {
            // Optimized in place, so that each weight is freed once its packed form replaces
            // it, rather than held beside the packed copy until the plan is built.
            (model, None)
        };
        // The model is decluttered already: only the optimizing passes are left.
        if large {
            optimized.optimize_with_session(&mut codegen_one_fold_at_a_time().session())
        } else {
            optimized.optimize()
        }
        .map_err(|e| Error::Optimize { reason: reason(&e) })?;
        let plan = optimized
            .into_runnable()
            .map_err(|e| Error::Optimize { reason: reason(&e) })?;
        let plans = kept.map(|model| Arc::new(PlanCache::new(model, options.plan_cache)));
        let executor = executor(options)?;
        Ok(Model {
            signature: signature.clone(),
            inputs,
            dims,
            engine: Engine::Tract(TractPlans {
                output_shapes,
                plan,
                plans,
                executor,
            }),
        })
    }

    /// A model tract types per shape (see [`Model::per_shape_dims`]). It must type with every
    /// named dim at 1, which builds the first plan; otherwise the symbolic typing's error
    /// stands (or the signature's problems, when those are what failed).
    fn load_per_shape(
        parsed: Parsed,
        signature: &Signature,
        options: &LoadOptions,
        symbolic: Error,
    ) -> Result<Model, Error> {
        let (inputs, dims) = declared_axes(signature);
        let mut engine = PerShape {
            parsed,
            signature: signature.clone(),
            capacity: options.plan_cache.max(1),
            state: Mutex::new(CacheState::default()),
            executor: executor(options)?,
        };
        let probe = vec![1; dims.len()];
        match engine.plan(&dims, &probe) {
            Ok(_) => {}
            Err(e @ Error::Signature(_)) => return Err(e),
            Err(_) => return Err(symbolic),
        }
        if initializer_bytes(&engine.parsed) > PLAN_CACHE_MAX_WEIGHTS {
            // Every plan holds its own copy of the weights.
            engine.capacity = 1;
        }
        Ok(Model {
            signature: signature.clone(),
            inputs,
            dims,
            engine: Engine::PerShape(engine),
        })
    }

    /// The signature the model was loaded with.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Builds now, on this thread, the plan concretized for these sizes of the named dims (every
    /// one of them, e.g. `[("batch", 64)]`), so that the first calls of that size need not wait
    /// for it to be built in the background. Returns false when the model has no plan cache (it
    /// is off, or ONNX Runtime runs the model).
    pub fn prepare(&self, sizes: &[(&str, usize)]) -> Result<bool, Error> {
        let key = self
            .dims
            .iter()
            .map(|d| {
                let found = sizes.iter().find(|(name, _)| *name == d.name);
                found.map(|(_, size)| *size).ok_or_else(|| {
                    Error::PrepareSizes(format!(
                        "no size given for dim `{}`; give every one of {}",
                        d.name,
                        self.dims
                            .iter()
                            .map(|d| format!("`{}`", d.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<usize>, Error>>()?;
        if let Some((name, _)) = sizes
            .iter()
            .find(|(name, _)| !self.dims.iter().any(|d| d.name == *name))
        {
            return Err(Error::PrepareSizes(format!(
                "the model has no dim `{name}`"
            )));
        }
        match &self.engine {
            Engine::Tract(TractPlans {
                plans: Some(cache), ..
            }) => {
                let subs = substitutions(&self.dims, &key);
                cache.build(key, subs)?;
                Ok(true)
            }
            Engine::PerShape(engine) => engine.plan(&self.dims, &key).map(|_| true),
            _ => Ok(false),
        }
    }

    /// What the cache of concretized plans holds and has done since load; `None` when the
    /// model has none (the cache is off, or ONNX Runtime runs it).
    pub fn plan_stats(&self) -> Option<PlanStats> {
        let (state, capacity) = match &self.engine {
            Engine::Tract(TractPlans {
                plans: Some(cache), ..
            }) => (&cache.state, cache.capacity),
            Engine::PerShape(engine) => (&engine.state, engine.capacity),
            _ => return None,
        };
        Some(
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stats(capacity),
        )
    }

    /// How long each plan built since the last call took to type and optimize, oldest first
    /// (at most the last 256), for a server to report the cost of new shapes; empty when the
    /// model has no plan cache.
    pub fn take_plan_builds(&self) -> Vec<Duration> {
        let state = match &self.engine {
            Engine::Tract(TractPlans {
                plans: Some(cache), ..
            }) => &cache.state,
            Engine::PerShape(engine) => &engine.state,
            _ => return Vec::new(),
        };
        std::mem::take(&mut state.lock().unwrap_or_else(PoisonError::into_inner).builds)
    }

    /// Runs the model. `inputs` come in the order of the signature's inputs; the outputs are
    /// returned in the order of its outputs. Every input is checked first: count, dtype (exact,
    /// never cast), rank, fixed sizes and the sizes of named dims, which must agree across
    /// inputs. A call with a zero-sized dim returns empty outputs when every output is empty
    /// for it, and is refused otherwise.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, Error> {
        let sizes = self.check_inputs(inputs)?;
        let (plan, executor) = match &self.engine {
            Engine::Tract(tract) => {
                if let Some(empty) = self.empty_outputs(tract, inputs, &sizes)? {
                    return Ok(empty);
                }
                let plan = match &tract.plans {
                    Some(cache) => cache
                        .plan_for(&sizes, &self.dims)
                        .unwrap_or_else(|| tract.plan.clone()),
                    None => tract.plan.clone(),
                };
                (plan, &tract.executor)
            }
            Engine::PerShape(engine) => {
                if let Some((position, axis)) = first_empty_axis(inputs) {
                    let spec = &self.signature.inputs[position];
                    return Err(Error::EmptyInput {
                        name: spec.name.clone(),
                        axis,
                        dim: spec.shape[axis].clone(),
                    });
                }
                (engine.plan(&self.dims, &sizes)?, &engine.executor)
            }
            #[cfg(feature = "ort")]
            Engine::Ort(engine) => {
                return guarded("running", || engine.run(inputs, &self.signature));
            }
        };
        let values = inputs
            .iter()
            .map(|t| crate::tract_io::to_tract(t).map(|t| t.into_tvalue()))
            .collect::<TractResult<TVec<TValue>>>()
            .map_err(|e| Error::Run { reason: reason(&e) })?;
        let run = || {
            guarded("running", || {
                plan.run(values)
                    .map_err(|e| Error::Run { reason: reason(&e) })
            })
        };
        let outputs = match executor {
            // The executor is set for this call only, on this thread: other models and other
            // callers keep theirs. The panic is caught inside the scope, because tract puts the
            // thread's previous executor back only when the closure returns.
            Some(executor) => multithread_tract_scope(executor.clone(), run),
            None => run(),
        }?;
        outputs
            .iter()
            .zip(&self.signature.outputs)
            .map(|(value, spec)| {
                let t = crate::tract_io::from_tract(value).map_err(|reason| Error::Output {
                    name: spec.name.clone(),
                    reason,
                })?;
                if t.dtype() != spec.dtype {
                    return Err(Error::Output {
                        name: spec.name.clone(),
                        reason: format!(
                            "the model returned {}, but {} is declared",
                            t.dtype(),
                            spec.dtype
                        ),
                    });
                }
                Ok(t)
            })
            .collect()
    }

    /// Checks inputs as [`Model::run`] does, without running the model: count, dtype, rank,
    /// fixed sizes and named dims agreeing across inputs. A server checks each request this way
    /// before merging it into a batch, so that one bad request cannot fail the others.
    pub fn check(&self, inputs: &[Tensor]) -> Result<(), Error> {
        self.check_inputs(inputs).map(drop)
    }

    /// Checks the inputs against the signature and returns the size of each named dim.
    fn check_inputs(&self, inputs: &[Tensor]) -> Result<Vec<usize>, Error> {
        let specs = &self.signature.inputs;
        if inputs.len() != specs.len() {
            return Err(Error::InputCount {
                expected: specs.len(),
                found: inputs.len(),
                names: specs.iter().map(|s| s.name.clone()).collect(),
            });
        }
        // Each named dim's size, with the input and axis that set it.
        let mut sizes: Vec<Option<(usize, usize, usize)>> = vec![None; self.dims.len()];
        for (position, ((t, spec), axes)) in inputs.iter().zip(specs).zip(&self.inputs).enumerate()
        {
            if t.dtype() != spec.dtype {
                return Err(Error::InputDType {
                    name: spec.name.clone(),
                    position,
                    expected: spec.dtype,
                    found: t.dtype(),
                });
            }
            if t.shape().len() != axes.len() {
                return Err(Error::InputRank {
                    name: spec.name.clone(),
                    position,
                    expected: spec.shape.clone(),
                    found: t.shape().to_vec(),
                });
            }
            for (axis, (&size, a)) in t.shape().iter().zip(axes).enumerate() {
                match *a {
                    Axis::Fixed(n) if n != size => {
                        return Err(Error::InputDim {
                            name: spec.name.clone(),
                            position,
                            axis,
                            expected: n as u64,
                            shape: spec.shape.clone(),
                            found: t.shape().to_vec(),
                        });
                    }
                    Axis::Fixed(_) => {}
                    Axis::Named(slot) => match sizes[slot] {
                        None => sizes[slot] = Some((size, position, axis)),
                        Some((first_size, first, first_axis)) if first_size != size => {
                            return Err(Error::InconsistentDim {
                                dim: self.dims[slot].name.clone(),
                                first: specs[first].name.clone(),
                                first_axis,
                                first_size,
                                name: spec.name.clone(),
                                axis,
                                size,
                            });
                        }
                        Some(_) => {}
                    },
                }
            }
        }
        Ok(sizes
            .into_iter()
            .map(|s| s.map_or(0, |(size, _, _)| size))
            .collect())
    }

    /// For a call where some input has a zero-sized axis: the outputs, when every one of them is
    /// empty (their shapes follow from the dims' sizes, so nothing needs to run), or the error
    /// naming that axis. `None` when no input is empty.
    fn empty_outputs(
        &self,
        tract: &TractPlans,
        inputs: &[Tensor],
        sizes: &[usize],
    ) -> Result<Option<Vec<Tensor>>, Error> {
        let Some((position, axis)) = first_empty_axis(inputs) else {
            return Ok(None);
        };
        let spec = &self.signature.inputs[position];
        let refuse = || Error::EmptyInput {
            name: spec.name.clone(),
            axis,
            dim: spec.shape[axis].clone(),
        };
        let mut values = SymbolValues::default();
        for (dim, &size) in self.dims.iter().zip(sizes) {
            if let Some(symbol) = &dim.symbol {
                values.set(symbol, size as i64);
            }
        }
        let mut outputs = Vec::new();
        for (shape, spec) in tract.output_shapes.iter().zip(&self.signature.outputs) {
            let shape = shape
                .iter()
                .map(|d| {
                    d.eval_to_i64(&values)
                        .ok()
                        .and_then(|v| usize::try_from(v).ok())
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(refuse)?;
            if !shape.contains(&0) {
                return Err(refuse());
            }
            let t = Tensor::new(shape, empty(spec.dtype)).map_err(|e| Error::Output {
                name: spec.name.clone(),
                reason: e.to_string(),
            })?;
            outputs.push(t);
        }
        Ok(Some(outputs))
    }
}

/// The bytes of an ONNX graph's initializers (its weights); 0 for NNEF.
fn initializer_bytes(parsed: &Parsed) -> usize {
    match parsed {
        Parsed::Onnx(onnx) => onnx.initializer_bytes(),
        Parsed::Nnef(_) => 0,
    }
}

/// The first input with a zero-sized axis, and that axis.
fn first_empty_axis(inputs: &[Tensor]) -> Option<(usize, usize)> {
    inputs.iter().enumerate().find_map(|(ix, t)| {
        t.shape()
            .iter()
            .position(|&s| s == 0)
            .map(|axis| (ix, axis))
    })
}

/// The thread pool runs spread their matrix products over, when `threads` > 1.
fn executor(options: &LoadOptions) -> Result<Option<Executor>, Error> {
    if options.threads <= 1 {
        return Ok(None);
    }
    // Built here rather than with `Executor::multithread`, which panics when the threads
    // cannot be started.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|n| format!("tiffin-mm-{n}"))
        .build()
        .map_err(|e| Error::Optimize {
            reason: format!("cannot start {} threads: {e}", options.threads),
        })?;
    Ok(Some(Executor::MultiThread(Arc::new(pool))))
}

/// A model tract cannot type with its named dims as symbols, typed, optimized and kept per
/// combination of sizes (least recently used out), from the parsed graph it keeps.
struct PerShape {
    parsed: Parsed,
    signature: Signature,
    capacity: usize,
    state: Mutex<CacheState>,
    executor: Option<Executor>,
}

impl PerShape {
    /// The plan for these sizes of the named dims: kept, or built now on the calling thread
    /// (calls of a new shape wait for it: there is no general plan to run meanwhile).
    fn plan(&self, dims: &[NamedDim], sizes: &[usize]) -> Result<Plan, Error> {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.tick += 1;
            let tick = state.tick;
            if let Some(entry) = state.plans.iter_mut().find(|(k, _, _)| k == sizes) {
                entry.2 = tick;
                return Ok(entry.1.clone());
            }
        }
        let named: Vec<(&str, usize)> = dims
            .iter()
            .zip(sizes)
            .map(|(d, &size)| (d.name.as_str(), size))
            .collect();
        let concrete = concretized(&self.signature, &named);
        let started = Instant::now();
        let plan = guarded("optimizing", || {
            let Typed { model, .. } = confront_concrete(&self.parsed, &concrete)?;
            let model = self.parsed.declutter(model)?;
            optimize(model)
        })?;
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keep(
                sizes.to_vec(),
                plan.clone(),
                self.capacity,
                started.elapsed(),
            );
        Ok(plan)
    }
}

/// An ONNX model as bytes, a file or a range of one, the things ONNX Runtime is given.
fn ort_source(source: ModelSource, format: ModelFormat) -> Result<ModelSource, Error> {
    match (format, source) {
        (
            ModelFormat::Onnx,
            onnx @ (ModelSource::Bytes(_) | ModelSource::File(_) | ModelSource::Span { .. }),
        ) => Ok(onnx),
        (ModelFormat::Onnx, ModelSource::Dir(path)) => Err(Error::Source(format!(
            "an ONNX model is one file, but {} was given as a folder; give the bytes of the .onnx file",
            path.display()
        ))),
        (ModelFormat::Nnef, _) => Err(Error::RuntimeUnavailable(
            "ONNX Runtime runs ONNX models only, and this model is NNEF; run it with tract (--runtime tract)".into(),
        )),
    }
}

/// Each input's axes and the named dims they share, from the signature alone (for engines
/// that take dims by size, with no symbols to bind).
fn declared_axes(signature: &Signature) -> (Vec<Vec<Axis>>, Vec<NamedDim>) {
    let mut dims: Vec<NamedDim> = Vec::new();
    for d in signature.inputs.iter().flat_map(|spec| &spec.shape) {
        if let Dim::Named(name) = d
            && !dims.iter().any(|d| &d.name == name)
        {
            dims.push(NamedDim {
                name: name.clone(),
                symbol: None,
            });
        }
    }
    // Every name an input declares is in `dims` now, so this cannot fail.
    let inputs = input_axes(signature, &dims).unwrap_or_default();
    (inputs, dims)
}

/// Each input's axes: fixed sizes, and named dims as their places in `dims`, which binds every
/// name an input declares.
fn input_axes(signature: &Signature, dims: &[NamedDim]) -> Result<Vec<Vec<Axis>>, Error> {
    signature
        .inputs
        .iter()
        .map(|spec| {
            spec.shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => Ok(Axis::Fixed(*n as usize)),
                    Dim::Named(name) => dims
                        .iter()
                        .position(|d| &d.name == name)
                        .map(Axis::Named)
                        .ok_or_else(|| Error::Typing {
                            reason: format!("dim `{name}` of input `{}` is not bound", spec.name),
                        }),
                })
                .collect()
        })
        .collect()
}

fn empty(dtype: DType) -> TensorData {
    match dtype {
        DType::F16 => TensorData::F16(vec![]),
        DType::F32 => TensorData::F32(vec![]),
        DType::F64 => TensorData::F64(vec![]),
        DType::I8 => TensorData::I8(vec![]),
        DType::I16 => TensorData::I16(vec![]),
        DType::I32 => TensorData::I32(vec![]),
        DType::I64 => TensorData::I64(vec![]),
        DType::U8 => TensorData::U8(vec![]),
        DType::U16 => TensorData::U16(vec![]),
        DType::U32 => TensorData::U32(vec![]),
        DType::U64 => TensorData::U64(vec![]),
        DType::Bool => TensorData::Bool(vec![]),
        DType::String => TensorData::String(vec![]),
    }
}

/// Models with more weights than this get no plan cache: serving a model of 1 GiB of weights
/// held 2.08x its size resident with the cache and ~1.05x without (`cargo xtask bench memory`),
/// while what the cache buys (a plan per size, up to 18x faster for text_direction's 1.5 MB)
/// matters for small models with several dynamic dims.
const PLAN_CACHE_MAX_WEIGHTS: usize = 256 << 20;

/// The bytes of the constants of a model: its weights, as tract holds them.
fn weight_bytes(model: &TypedModel) -> usize {
    model
        .nodes
        .iter()
        .filter_map(|node| node.op_as::<tract_onnx::tract_core::ops::konst::Const>())
        .map(|c| c.val().len() * c.val().datum_type().size_of())
        .sum()
}

/// Each dim's tract symbol with its size, for concretizing.
fn substitutions(dims: &[NamedDim], sizes: &[usize]) -> HashMap<Symbol, TDim> {
    dims.iter()
        .zip(sizes)
        .filter_map(|(d, &size)| d.symbol.clone().map(|s| (s, (size as i64).to_dim())))
        .collect()
}

/// tract's optimizing passes (`TypedModel::optimize`), with constants folded one at a time:
/// each fold (a weight packed for the matrix product, say) is followed by the compaction that
/// frees what it replaced, where tract folds every constant of the graph before compacting, and
/// so holds every weight twice at that point. Each compaction walks the whole graph, so this
/// is kept for models whose weights make that worth it.
fn codegen_one_fold_at_a_time() -> Optimizer {
    let mut optimizer = Optimizer::codegen();
    // tract does not export its constant-folding pass; it is known by its debug form. Should
    // that change, nothing is wrapped and the passes are tract's own.
    let prop_const = Optimizer::prop_consts()
        .passes
        .first()
        .map(|pass| format!("{pass:?}"));
    optimizer.passes = std::mem::take(&mut optimizer.passes)
        .into_iter()
        .map(|pass| {
            if prop_const.as_ref() == Some(&format!("{pass:?}")) {
                Box::new(OnePatch {
                    inner: pass,
                    stop: false,
                })
            } else {
                pass
            }
        })
        .collect();
    optimizer
}

/// A pass that gives the optimizer one patch at a time: after each, tract compacts the graph
/// and restarts the pass from its beginning.
#[derive(Debug, Clone)]
struct OnePatch {
    inner: Box<dyn TypedPass>,
    /// A patch was given since the last reset.
    stop: bool,
}

impl TypedPass for OnePatch {
    fn reset(&mut self) -> TractResult<()> {
        self.stop = false;
        self.inner.reset()
    }

    fn next(
        &mut self,
        session: &mut OptimizerSession,
        model: &TypedModel,
    ) -> TractResult<Option<TypedModelPatch>> {
        if self.stop {
            return Ok(None);
        }
        let patch = self.inner.next(session, model)?;
        self.stop = patch.is_some();
        Ok(patch)
    }

    fn run_direct(&mut self, model: &mut TypedModel) -> TractResult<bool> {
        self.inner.run_direct(model)
    }
}

fn optimize(model: TypedModel) -> Result<Plan, Error> {
    let optimized = model
        .into_optimized()
        .map_err(|e| Error::Optimize { reason: reason(&e) })?;
    optimized
        .into_runnable()
        .map_err(|e| Error::Optimize { reason: reason(&e) })
}

/// Runs `f`, turning a panic inside it (inside tract: tiffin's own code returns errors) into
/// [`Error::Panicked`], so that a graph or inputs tract does not handle fail one call instead of
/// the process. tiffin's side is left whole for the next call: plans are immutable and every
/// run builds its own state, which the unwinding drops. Per-thread state tract sets around the
/// panicking code is its own to restore; the executor override is (callers catch inside
/// `multithread_tract_scope`), a flag of tract's dim simplifier set during `simplify` is not,
/// which can only make a later load on that thread simplify less.
pub(crate) fn guarded<T>(
    stage: &'static str,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(Error::Panicked { stage, message })
    })
}

/// Plans concretized for one set of dim sizes, built in the background from the decluttered
/// model, kept least recently used first out.
struct PlanCache {
    model: TypedModel,
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Ready plans with the tick of their last use.
    plans: Vec<(Vec<usize>, Plan, u64)>,
    /// Sizes that failed to concretize; they keep running on the general plan.
    failed: Vec<Vec<usize>>,
    building: bool,
    tick: u64,
    /// Plans built since load, and dropped to make room.
    built: u64,
    evicted: u64,
    /// How long the builds not yet taken by [`Model::take_plan_builds`] took, oldest first.
    builds: Vec<Duration>,
}

/// Build times kept for [`Model::take_plan_builds`] when nobody takes them; older ones go.
const PENDING_BUILDS: usize = 256;

impl CacheState {
    /// Keeps `plan` for `key`, built in `took`, dropping the least recently used plan when
    /// `capacity` are kept.
    fn keep(&mut self, key: Vec<usize>, plan: Plan, capacity: usize, took: Duration) {
        self.plans.retain(|(k, _, _)| *k != key);
        if self.plans.len() >= capacity
            && let Some(oldest) = self
                .plans
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.2)
                .map(|(ix, _)| ix)
        {
            self.plans.remove(oldest);
            self.evicted += 1;
        }
        let tick = self.tick;
        self.plans.push((key, plan, tick));
        self.built += 1;
        if self.builds.len() >= PENDING_BUILDS {
            self.builds.remove(0);
        }
        self.builds.push(took);
    }

    fn stats(&self, capacity: usize) -> PlanStats {
        PlanStats {
            kept: self.plans.len(),
            capacity,
            built: self.built,
            evicted: self.evicted,
        }
    }
}

/// What a model's cache of concretized plans holds and has done since load (see
/// [`LoadOptions::plan_cache`] and [`Model::per_shape_dims`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanStats {
    /// Plans kept now, one per combination of dim sizes.
    pub kept: usize,
    /// The most plans kept at once.
    pub capacity: usize,
    /// Plans built since load.
    pub built: u64,
    /// Plans dropped, least recently used first, to make room for a new one.
    pub evicted: u64,
}

impl PlanCache {
    fn new(model: TypedModel, capacity: usize) -> PlanCache {
        PlanCache {
            model,
            capacity,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The concretized plan for `sizes` when there is one; otherwise starts building it on a
    /// background thread, one build at a time, so that a stream of ever-new sizes costs at most
    /// one core while the calls run on the general plan.
    fn plan_for(self: &Arc<Self>, sizes: &[usize], dims: &[NamedDim]) -> Option<Plan> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.plans.iter_mut().find(|(k, _, _)| k == sizes) {
            entry.2 = tick;
            return Some(entry.1.clone());
        }
        if state.building || state.failed.iter().any(|k| k == sizes) {
            return None;
        }
        state.building = true;
        drop(state);
        let cache = Arc::clone(self);
        let key = sizes.to_vec();
        let subs = substitutions(dims, &key);
        let spawned = std::thread::Builder::new()
            .name("tiffin-plan".into())
            .spawn(move || {
                // A size that fails to concretize is remembered and keeps the general plan.
                let _ = cache.build(key, subs);
                cache
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .building = false;
            });
        if spawned.is_err() {
            // No thread to build on: keep running on the general plan.
            self.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .building = false;
        }
        None
    }

    /// Concretizes and optimizes the plan for `key` and keeps it, evicting the least recently
    /// used plan when full.
    fn build(&self, key: Vec<usize>, subs: HashMap<Symbol, TDim>) -> Result<(), Error> {
        let started = Instant::now();
        let plan = guarded("optimizing", || {
            self.model
                .set_symbols(&subs)
                .map_err(|e| Error::Optimize { reason: reason(&e) })
                .and_then(optimize)
        });
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match plan {
            Ok(plan) => {
                state.keep(key, plan, self.capacity, started.elapsed());
                Ok(())
            }
            Err(e) => {
                state.failed.push(key);
                if state.failed.len() > 4 * self.capacity.max(1) {
                    state.failed.remove(0);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fixture, reference};

    /// One model serves many threads.
    #[test]
    fn models_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Model>();
    }

    fn mnist(plan_cache: usize) -> Model {
        let text = std::fs::read_to_string(fixture("mnist_cnn").join("tiffin.toml")).unwrap();
        let signature = tiffin_manifest::Authoring::from_toml_str(&text)
            .unwrap()
            .signature;
        let source =
            ModelSource::Bytes(std::fs::read(fixture("mnist_cnn").join("model.onnx")).unwrap());
        let options = LoadOptions::default().with_plan_cache(plan_cache);
        Model::load(&source, ModelFormat::Onnx, &signature, &options).unwrap()
    }

    fn cache(model: &Model) -> &Arc<PlanCache> {
        match &model.engine {
            Engine::Tract(t) => t.plans.as_ref().unwrap(),
            _ => panic!("not a symbolic tract model"),
        }
    }

    fn ready(model: &Model) -> Vec<Vec<usize>> {
        let cache = cache(model);
        let state = cache.state.lock().unwrap();
        state.plans.iter().map(|(k, _, _)| k.clone()).collect()
    }

    /// Waits for the background build to finish; it takes seconds in a debug build.
    fn settle(model: &Model) {
        let cache = cache(model);
        for _ in 0..6000 {
            if !cache.state.lock().unwrap().building {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the plan took over a minute to build");
    }

    /// A size gets its plan when first seen, built in the background; the concretized plan
    /// answers like the general one.
    #[test]
    fn sizes_get_their_own_plan() {
        let model = mnist(2);
        let image = crate::testutil::head_rows(&reference("mnist_cnn").inputs["image"], 3);
        assert!(ready(&model).is_empty());
        let general = model.run(std::slice::from_ref(&image)).unwrap();
        settle(&model);
        assert_eq!(ready(&model), vec![vec![3]]);
        let concrete = model.run(std::slice::from_ref(&image)).unwrap();
        crate::testutil::assert_close(
            "logits",
            &concrete[0],
            &general[0],
            &crate::testutil::SAME_MACHINE,
        );
    }

    /// A model loaded from a source it owns answers exactly as one loaded from a borrowed
    /// source; a corrupt file is refused the same way.
    #[test]
    fn loading_an_owned_source_gives_the_same_model() {
        let borrowed = mnist(0);
        let text = std::fs::read_to_string(fixture("mnist_cnn").join("tiffin.toml")).unwrap();
        let signature = tiffin_manifest::Authoring::from_toml_str(&text)
            .unwrap()
            .signature;
        let bytes = std::fs::read(fixture("mnist_cnn").join("model.onnx")).unwrap();
        let options = LoadOptions::default().with_plan_cache(0);
        let owned = Model::load_owned(
            ModelSource::Bytes(bytes.clone()),
            ModelFormat::Onnx,
            &signature,
            &options,
        )
        .unwrap();
        let image = crate::testutil::head_rows(&reference("mnist_cnn").inputs["image"], 2);
        assert_eq!(
            owned.run(std::slice::from_ref(&image)).unwrap(),
            borrowed.run(std::slice::from_ref(&image)).unwrap()
        );
        let cut = ModelSource::Bytes(bytes[..bytes.len() / 2].to_vec());
        let refused = Model::load_owned(cut, ModelFormat::Onnx, &signature, &options).unwrap_err();
        assert!(matches!(refused, Error::Parse { .. }), "{refused}");
    }

    /// A model tract types per shape keeps at most `plan_cache` plans, least recently used
    /// out, and answers a shape again after its plan was dropped.
    #[test]
    fn plans_per_shape_are_bounded() {
        let text = std::fs::read_to_string(fixture("bert_tiny").join("tiffin.toml")).unwrap();
        let signature = tiffin_manifest::Authoring::from_toml_str(&text)
            .unwrap()
            .signature;
        let source = ModelSource::File(fixture("bert_tiny").join("model.onnx"));
        let options = LoadOptions::default().with_plan_cache(2);
        let model = Model::load(&source, ModelFormat::Onnx, &signature, &options).unwrap();
        let Engine::PerShape(engine) = &model.engine else {
            panic!("bert_tiny types with symbols now: {model:?}");
        };
        let kept = || {
            let state = engine.state.lock().unwrap();
            let mut keys: Vec<Vec<usize>> = state.plans.iter().map(|(k, _, _)| k.clone()).collect();
            keys.sort();
            keys
        };
        // The load built the plan for every dim at 1.
        assert_eq!(kept(), vec![vec![1, 1]]);
        let tokens = |len: usize| {
            let ids = Tensor::new(vec![1, len], TensorData::I64(vec![1; len])).unwrap();
            vec![ids.clone(), ids.clone(), ids]
        };
        let first = model.run(&tokens(4)).unwrap();
        model.run(&tokens(5)).unwrap();
        assert_eq!(kept(), vec![vec![1, 4], vec![1, 5]]);
        assert_eq!(model.run(&tokens(4)).unwrap(), first);
        let stats = model.plan_stats().unwrap();
        assert_eq!(
            (stats.kept, stats.capacity, stats.built, stats.evicted),
            (2, 2, 3, 1)
        );
        // Each build's time is taken once.
        assert_eq!(model.take_plan_builds().len(), 3);
        assert!(model.take_plan_builds().is_empty());
        // A shape can be built before its first request, as for a batch size.
        assert!(model.prepare(&[("batch", 2), ("seq", 7)]).unwrap());
        assert_eq!(kept(), vec![vec![1, 4], vec![2, 7]]);
        assert_eq!(model.take_plan_builds().len(), 1);
    }

    /// The cache keeps `plan_cache` plans, dropping the least recently used.
    #[test]
    fn the_least_recently_used_plan_goes_first() {
        let model = mnist(2);
        assert!(model.prepare(&[("batch", 1)]).unwrap());
        assert!(model.prepare(&[("batch", 2)]).unwrap());
        let image = crate::testutil::head_rows(&reference("mnist_cnn").inputs["image"], 1);
        model.run(&[image]).unwrap();
        model.prepare(&[("batch", 4)]).unwrap();
        let mut kept = ready(&model);
        kept.sort();
        assert_eq!(kept, vec![vec![1], vec![4]]);
        let stats = model.plan_stats().unwrap();
        assert_eq!(
            (stats.kept, stats.capacity, stats.built, stats.evicted),
            (2, 2, 3, 1)
        );
        assert!(mnist(0).plan_stats().is_none());
        let err = model.prepare(&[("n", 4)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no size given for dim `batch`; give every one of `batch`"
        );
        assert!(!mnist(0).prepare(&[("batch", 1)]).unwrap());
    }

    /// The fixtures with an ONNX model.
    const ONNX_FIXTURES: [&str; 15] = [
        "bert_tiny",
        "breast_cancer",
        "breast_cancer_gbt",
        "breast_cancer_mlp",
        "breast_cancer_rf",
        "breast_cancer_scaled",
        "churn_model",
        "diabetes_tree_reg",
        "forest300",
        "iris",
        "iris_gbt",
        "iris_rf",
        "mnist_cnn",
        "silero_vad",
        "text_direction",
    ];

    /// The signature a fixture's tiffin.toml declares.
    fn fixture_signature(name: &str) -> Signature {
        let text = std::fs::read_to_string(fixture(name).join("tiffin.toml")).unwrap();
        tiffin_manifest::Authoring::from_toml_str(&text)
            .unwrap()
            .signature
    }

    /// Loads a parsed model and runs it on `inputs`; also says how many of its initializers
    /// were read into tensors beside the protobuf.
    fn run_parsed(
        parsed: Parsed,
        signature: &Signature,
        inputs: &[Tensor],
    ) -> (usize, Vec<Tensor>) {
        let beside = match &parsed {
            Parsed::Onnx(onnx) => onnx.weights.len(),
            Parsed::Nnef(_) => 0,
        };
        let options = LoadOptions::default().with_plan_cache(0);
        let model = Model::load_parsed(parsed, signature, &options).unwrap();
        (beside, model.run(inputs).unwrap())
    }

    /// Every fixture answers the same with its initializers read into tensors beside the
    /// protobuf (all of them, whatever their size) as with them decoded inside it: the
    /// constants take the place of the initializers, in the main graph and in the branches of
    /// silero_vad's `If`s that use them.
    #[test]
    fn fixtures_answer_the_same_with_weights_beside_the_protobuf() {
        let mut beside = 0;
        for name in ONNX_FIXTURES {
            let dir = fixture(name);
            let signature = fixture_signature(name);
            let reference = reference(name);
            let inputs: Vec<Tensor> = signature
                .inputs
                .iter()
                .map(|i| reference.inputs[&i.name].clone())
                .collect();
            let source = ModelSource::File(dir.join("model.onnx"));
            let parse = |min| crate::graph::parse_with(&source, ModelFormat::Onnx, min).unwrap();
            let (none, whole) = run_parsed(parse(u64::MAX), &signature, &inputs);
            assert_eq!(none, 0, "{name}");
            let (weights, apart) = run_parsed(parse(1), &signature, &inputs);
            beside += weights;
            assert_eq!(apart.len(), whole.len(), "{name}");
            for (got, want) in apart.iter().zip(&whole) {
                crate::testutil::assert_close(name, got, want, &crate::testutil::SAME_MACHINE);
            }
        }
        assert!(beside > 0, "no fixture had an initializer to read beside");
    }

    /// A model with a 1 MiB weight, which the main graph reads (`z`) and an `If` branch reads
    /// from the outer scope (`y`), from a file and from bytes: the weight goes into a tensor
    /// beside the protobuf, and the model computes what it computed decoded whole.
    #[test]
    fn a_large_weight_is_read_beside_the_protobuf() {
        use tract_onnx::pb;
        use tract_onnx::pb::tensor_proto::DataType;
        const N: usize = 512;
        let weights: Vec<f32> = (0..N * N).map(|i| (i % 7) as f32 - 3.0).collect();
        let float = |name: &str| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let node = |op: &str, inputs: &[&str], output: &str| pb::NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|&i| i.into()).collect(),
            output: vec![output.into()],
            ..Default::default()
        };
        let branch = |name: &str, nodes: Vec<pb::NodeProto>, output: &str| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::Graph as i32,
            g: Some(pb::GraphProto {
                name: name.into(),
                node: nodes,
                output: vec![float(output)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut choose = node("If", &["cond"], "y");
        choose.attribute = vec![
            branch("then_branch", vec![node("MatMul", &["x", "w"], "t")], "t"),
            branch("else_branch", vec![node("Neg", &["x"], "e")], "e"),
        ];
        let proto = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(pb::GraphProto {
                name: "dense".into(),
                node: vec![choose, node("MatMul", &["x", "w"], "z")],
                initializer: vec![
                    pb::TensorProto {
                        name: "w".into(),
                        dims: vec![N as i64, N as i64],
                        data_type: DataType::Float as i32,
                        raw_data: weights.iter().flat_map(|w| w.to_le_bytes()).collect(),
                        ..Default::default()
                    },
                    pb::TensorProto {
                        name: "cond".into(),
                        data_type: DataType::Bool as i32,
                        int32_data: vec![1],
                        ..Default::default()
                    },
                ],
                input: vec![float("x")],
                output: vec![float("y"), float("z")],
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = prost::Message::encode_to_vec(&proto);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        // The same bytes as a range of a file, with other bytes around them.
        let mut framed = tempfile::NamedTempFile::new().unwrap();
        let junk = vec![0x0a; 4099];
        std::io::Write::write_all(&mut framed, &[&junk[..], &bytes, &junk].concat()).unwrap();
        let signature: Signature = serde_json::from_value(serde_json::json!({
            "inputs": [{"name": "x", "dtype": "f32", "shape": ["batch", N]}],
            "outputs": [
                {"name": "y", "dtype": "f32", "shape": ["batch", N]},
                {"name": "z", "dtype": "f32", "shape": ["batch", N]},
            ],
        }))
        .unwrap();
        let x: Vec<f32> = (0..2 * N).map(|i| (i % 5) as f32 * 0.5).collect();
        let input = Tensor::new(vec![2, N], TensorData::F32(x.clone())).unwrap();
        let want: Vec<f32> = (0..2 * N)
            .map(|ix| {
                let (row, col) = (ix / N, ix % N);
                (0..N).map(|k| x[row * N + k] * weights[k * N + col]).sum()
            })
            .collect();
        let sources = [
            ModelSource::File(file.path().to_owned()),
            ModelSource::Span {
                path: framed.path().to_owned(),
                offset: junk.len() as u64,
                len: bytes.len() as u64,
            },
            ModelSource::Bytes(bytes),
        ];
        for source in &sources {
            let parse = |min| crate::graph::parse_with(source, ModelFormat::Onnx, min).unwrap();
            let (none, whole) =
                run_parsed(parse(u64::MAX), &signature, std::slice::from_ref(&input));
            let (beside, apart) = run_parsed(
                crate::graph::parse(source, ModelFormat::Onnx).unwrap(),
                &signature,
                std::slice::from_ref(&input),
            );
            assert_eq!((none, beside), (0, 1), "{source:?}");
            assert_eq!(apart, whole, "{source:?}");
            let TensorData::F32(z) = apart[1].data() else {
                panic!("z is not f32");
            };
            assert_eq!(z, &want, "{source:?}");
            assert_eq!(apart[0], apart[1], "{source:?}");
        }
    }

    /// A file cut short is refused with the decoder's error, whether the cut falls in a large
    /// weight or in the graph before it; a weight's data past the end of the file is never
    /// read as zeros. So is a range of a file cut short, although the rest of the model follows
    /// it in the file: nothing past the range is read.
    #[test]
    fn a_cut_file_is_refused() {
        use tract_onnx::pb;
        let proto = pb::ModelProto {
            graph: Some(pb::GraphProto {
                initializer: vec![pb::TensorProto {
                    name: "w".into(),
                    dims: vec![1 << 18],
                    data_type: pb::tensor_proto::DataType::Float as i32,
                    raw_data: vec![1; 1 << 20],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = prost::Message::encode_to_vec(&proto);
        for cut in [bytes.len() - 1, bytes.len() / 2, 10, 3] {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut file, &bytes[..cut]).unwrap();
            let mut whole = tempfile::NamedTempFile::new().unwrap();
            std::io::Write::write_all(&mut whole, &[&[7; 100][..], &bytes].concat()).unwrap();
            for source in [
                ModelSource::File(file.path().to_owned()),
                ModelSource::Bytes(bytes[..cut].to_vec()),
                ModelSource::Span {
                    path: whole.path().to_owned(),
                    offset: 100,
                    len: cut as u64,
                },
            ] {
                let Err(e) = crate::graph::parse(&source, ModelFormat::Onnx) else {
                    panic!("a file cut at {cut} of {} was read", bytes.len());
                };
                assert!(matches!(e, Error::Parse { .. }), "{e}");
            }
        }
    }

    /// Constants folded one at a time give the plan tract's own passes give: the same outputs
    /// for every fixture that types with symbols.
    #[test]
    fn folding_one_constant_at_a_time_gives_the_same_plan() {
        let optimizer = codegen_one_fold_at_a_time();
        let wrapped = optimizer
            .passes
            .iter()
            .filter(|p| format!("{p:?}").starts_with("OnePatch"))
            .count();
        assert_eq!(wrapped, 1, "tract's constant folding pass was not found");
        let mut compared = 0;
        for name in ONNX_FIXTURES {
            let dir = fixture(name);
            let signature = fixture_signature(name);
            let source = ModelSource::File(dir.join("model.onnx"));
            let parsed = crate::graph::parse(&source, ModelFormat::Onnx).unwrap();
            let Ok(Typed { model, .. }) = confront(&parsed, &signature) else {
                continue;
            };
            let model = parsed.declutter(model).unwrap();
            let mut theirs = model.clone();
            theirs.optimize().unwrap();
            let mut ours = model;
            ours.optimize_with_session(&mut codegen_one_fold_at_a_time().session())
                .unwrap();
            let reference = reference(name);
            let inputs: TVec<TValue> = signature
                .inputs
                .iter()
                .map(|i| {
                    crate::tract_io::to_tract(&reference.inputs[&i.name])
                        .unwrap()
                        .into_tvalue()
                })
                .collect();
            let run = |model: TypedModel| -> Vec<Tensor> {
                let plan = model.into_runnable().unwrap();
                plan.run(inputs.clone())
                    .unwrap()
                    .iter()
                    .map(|v| crate::tract_io::from_tract(v).unwrap())
                    .collect()
            };
            assert_eq!(run(ours), run(theirs), "{name}");
            compared += 1;
        }
        assert!(
            compared >= 10,
            "only {compared} fixtures typed with symbols"
        );
    }
}
