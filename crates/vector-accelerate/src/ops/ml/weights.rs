//! [`WeightStore`]: named tensors loaded from safetensors files or arrays,
//! checked against the shapes operations need, cached on devices, with
//! memory accounting.

mod file;
mod tensor;

pub use crate::core::dtype::DType;
pub use tensor::{Element, Tensor};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::linear::Linear;
use crate::core::device::Device;
use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::runtime::context::Context;
use crate::runtime::tensor::DeviceMatrix;

/// Names listed in a [`Error::MissingTensor`] message before it is cut.
const LISTED_NAMES: usize = 20;

/// A cache key for a device: `None` for the CPU, `Some(ordinal)` for CUDA.
type DeviceKey = Option<usize>;

fn device_key(d: Device) -> DeviceKey {
    match d {
        Device::Cpu => None,
        Device::Cuda(i) => Some(i),
    }
}

/// Memory held by a [`WeightStore`], in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeightBytes {
    /// The tensors' values in host memory (the sum of
    /// [`Tensor::byte_len`]).
    pub host: usize,
    /// The cached device copies (over every device; on a CPU context a
    /// copy is host memory and counted here too). f16 and bf16 tensors are
    /// kept in 16 bits on CUDA (rows padded to a multiple of 8 values),
    /// every other copy in `f32`.
    pub device: usize,
}

/// Named tensors (the weights of projections, encoders, PCA fits) with a
/// shape and a [`DType`], loaded from safetensors files or given as arrays.
///
/// Operations take their weights through shape-checked accessors
/// ([`matrix`](Self::matrix), [`vector`](Self::vector),
/// [`linear`](Self::linear)): a tensor that is missing, of another shape or
/// of the wrong dtype is a typed error naming it. Device copies made for a
/// context are cached per (tensor, device), so asking again for the same
/// weight does not upload it again; [`unload_device`](Self::unload_device)
/// drops them, [`remove`](Self::remove) drops the tensor too, and
/// [`bytes`](Self::bytes) tells what the store holds.
///
/// ```
/// use vector_accelerate::ml::WeightStore;
/// use vector_accelerate::linalg::Activation;
/// use vector_accelerate::{Context, Matrix, Precision};
/// let ctx = Context::cpu();
/// let mut store = WeightStore::new();
/// // A 3 -> 2 projection in PyTorch's nn.Linear layout ([d_out, d_in]).
/// store.insert_f32("proj.weight", &[2, 3], vec![1.0, 0.0, 1.0, 0.0, 2.0, 0.0])?;
/// store.insert_f32("proj.bias", &[2], vec![0.0, 1.0])?;
///
/// // Save as safetensors and load it back.
/// let path = std::env::temp_dir().join(format!("doc-weights-{}.safetensors", std::process::id()));
/// store.save_safetensors(&path)?;
/// let mut loaded = WeightStore::new();
/// loaded.load_safetensors(&path)?;
/// std::fs::remove_file(&path).ok();
///
/// let lin = loaded.linear(&ctx, "proj.weight", Some("proj.bias"), (3, 2))?;
/// let x = Matrix::new(vec![1.0, 2.0, 3.0], 3)?;
/// let y = lin.apply(&ctx, &x, Activation::None, Precision::Exact)?;
/// assert_eq!(y.to_host()?.as_slice(), &[4.0, 5.0]);
///
/// // The wrong layout is refused with both shapes in the message.
/// let e = loaded.linear(&ctx, "proj.weight", None, (2, 3)).unwrap_err();
/// assert!(e.to_string().contains("expected [3, 2], found [2, 3]"));
/// assert_eq!(loaded.bytes().host, 8 * 4);
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Default)]
pub struct WeightStore {
    tensors: BTreeMap<String, Tensor>,
    /// Device copies of 2-D tensors, per (name, device).
    cache: Mutex<HashMap<(String, DeviceKey), Arc<DeviceMatrix>>>,
}

impl std::fmt::Debug for WeightStore {
    /// The tensors (name, dtype, shape, size) and the bytes held.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let copies = self.cache().len();
        let bytes = self.bytes();
        f.debug_struct("WeightStore")
            .field("tensors", &self.tensors.values().collect::<Vec<_>>())
            .field("device_copies", &copies)
            .field("bytes", &bytes)
            .finish()
    }
}

impl WeightStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<(String, DeviceKey), Arc<DeviceMatrix>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `tensor` under `name` (the tensor takes that name), replacing
    /// (and returning) a tensor of the same name, whose device copies are
    /// dropped.
    pub fn insert(&mut self, name: impl Into<String>, mut tensor: Tensor) -> Option<Tensor> {
        let name = name.into();
        tensor.set_name(name.clone());
        self.unload_device(&name);
        self.tensors.insert(name, tensor)
    }

    /// Adds an `f32` tensor of shape `shape` (the product of the shape must
    /// be `values.len()`: [`Error::TensorSize`] otherwise), replacing a
    /// tensor of the same name.
    pub fn insert_f32(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<()> {
        let t = Tensor::from_values(name, shape, &values)?;
        self.insert(name, t);
        Ok(())
    }

    /// Loads every tensor of a safetensors file, replacing tensors of the
    /// same names, and returns the names loaded (sorted). Nothing is added
    /// unless the whole file is valid: a file that cannot be read, is
    /// truncated, has an invalid header or holds a dtype other than F32,
    /// F16, BF16, I8 or U8 is an [`Error::BadWeightFile`].
    pub fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let bytes = file::read(path)?;
        let tensors = file::parse(&bytes, &path.display().to_string())?;
        Ok(self.add_all(tensors))
    }

    /// [`load_safetensors`](Self::load_safetensors) from the bytes of a
    /// file already in memory (errors show the path as `<bytes>`).
    pub fn load_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<Vec<String>> {
        let tensors = file::parse(bytes, file::IN_MEMORY)?;
        Ok(self.add_all(tensors))
    }

    fn add_all(&mut self, tensors: Vec<Tensor>) -> Vec<String> {
        let mut names = Vec::with_capacity(tensors.len());
        for t in tensors {
            names.push(t.name().to_string());
            self.insert(t.name().to_string(), t);
        }
        names
    }

    /// The tensors `names` (every tensor when `None`; a name given twice
    /// counts once), looked up.
    fn select(&self, names: Option<&[&str]>) -> Result<Vec<&Tensor>> {
        let Some(names) = names else {
            return Ok(self.tensors.values().collect());
        };
        let mut seen = std::collections::HashSet::new();
        names
            .iter()
            .filter(|n| seen.insert(**n))
            .map(|n| self.get(n))
            .collect()
    }

    /// The bytes of a safetensors file holding the tensors `names` (every
    /// tensor when `None`; a missing name is [`Error::MissingTensor`]).
    pub fn to_safetensors_bytes(&self, names: Option<&[&str]>) -> Result<Vec<u8>> {
        file::serialize(&self.select(names)?, file::IN_MEMORY)
    }

    /// Writes every tensor to a safetensors file (through a temporary file
    /// and a rename, so an existing file is replaced whole or not at all).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save(path.as_ref(), None)
    }

    /// [`save_safetensors`](Self::save_safetensors) of the tensors `names`
    /// only (a missing name is [`Error::MissingTensor`]).
    pub fn save_safetensors_selected(&self, path: impl AsRef<Path>, names: &[&str]) -> Result<()> {
        self.save(path.as_ref(), Some(names))
    }

    fn save(&self, path: &Path, names: Option<&[&str]>) -> Result<()> {
        let bytes = file::serialize(&self.select(names)?, &path.display().to_string())?;
        file::write(path, &bytes)
    }

    /// The names of the tensors, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the store holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether a tensor of this name is held.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn missing(&self, name: &str) -> Error {
        let mut available: Vec<&str> = self.names();
        let more = available.len().saturating_sub(LISTED_NAMES);
        available.truncate(LISTED_NAMES);
        let mut list = if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        };
        if more > 0 {
            list.push_str(&format!(", ... and {more} more"));
        }
        Error::MissingTensor {
            name: name.to_string(),
            available: list,
        }
    }

    /// The tensor `name` ([`Error::MissingTensor`] when absent).
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| self.missing(name))
    }

    /// Removes (unloads) the tensor `name` and its device copies, and
    /// returns it ([`Error::MissingTensor`] when absent). A [`Linear`] made
    /// from it keeps its own reference to the device copy until dropped.
    pub fn remove(&mut self, name: &str) -> Result<Tensor> {
        if !self.tensors.contains_key(name) {
            return Err(self.missing(name));
        }
        self.unload_device(name);
        Ok(self.tensors.remove(name).expect("checked above"))
    }

    /// Drops the device copies of `name` (every device) and keeps the
    /// tensor; returns the bytes no longer counted. A [`Linear`] made from
    /// it keeps its own reference to the copy until dropped.
    pub fn unload_device(&self, name: &str) -> usize {
        let mut cache = self.cache();
        let mut freed = 0;
        cache.retain(|(n, _), m| {
            let keep = n != name;
            if !keep {
                freed += m.stored_bytes();
            }
            keep
        });
        freed
    }

    /// Host and device bytes held by the store.
    pub fn bytes(&self) -> WeightBytes {
        WeightBytes {
            host: self.tensors.values().map(Tensor::byte_len).sum(),
            device: self.cache().values().map(|m| m.stored_bytes()).sum(),
        }
    }

    /// The tensor `name`, which must have shape `shape`
    /// ([`Error::WrongShape`] otherwise).
    pub fn checked(&self, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let t = self.get(name)?;
        if t.shape() != shape {
            return Err(Error::WrongShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        Ok(t)
    }

    /// The values of the 2-D tensor `name` of shape `[rows, cols]` as an
    /// `f32` matrix (f16, bf16, i8 and u8 widened exactly).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let t = self.checked(name, &[rows, cols])?;
        Matrix::new(t.to_f32(), cols)
    }

    /// The values of the 1-D tensor `name` of shape `[len]` as `f32`
    /// (widened exactly).
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        Ok(self.checked(name, &[len])?.to_f32())
    }

    /// The 2-D tensor `name` (shape `[rows, cols]`) on `ctx`'s device,
    /// uploaded on first use and cached: later calls for the same tensor
    /// and device return the same copy. f16 and bf16 tensors stay in 16 bits
    /// on CUDA (their exact widened values are what every operation
    /// computes with); other dtypes are widened to `f32`. Non-finite values
    /// are an error.
    pub fn resident(
        &self,
        ctx: &Context,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Arc<DeviceMatrix>> {
        let t = self.checked(name, &[rows, cols])?;
        let key = (name.to_string(), device_key(ctx.device()));
        let mut cache = self.cache();
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let values = t.to_f32();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "weight",
                values[i],
                format!(
                    "element ({}, {}) of tensor '{name}' is not finite",
                    i / cols.max(1),
                    i % cols.max(1)
                ),
            ));
        }
        let m = match t.dtype() {
            DType::F16 => ctx.upload_f16(&t.values::<half::f16>()?, cols)?,
            DType::Bf16 => ctx.upload_bf16(&t.values::<half::bf16>()?, cols)?,
            _ => ctx.upload(&Matrix::new(values, cols)?)?,
        };
        let m = Arc::new(m);
        cache.insert(key, m.clone());
        Ok(m)
    }

    /// A [`Linear`] map `d_in -> d_out` with the weight `weight` (shape
    /// `[d_out, d_in]`, PyTorch's `nn.Linear.weight` layout) and an
    /// optional bias (shape `[d_out]`). The weight's device copy is cached
    /// (see [`resident`](Self::resident)): a second map from the same weight
    /// on the same device shares it.
    pub fn linear(
        &self,
        ctx: &Context,
        weight: &str,
        bias: Option<&str>,
        (d_in, d_out): (usize, usize),
    ) -> Result<Linear> {
        self.checked(weight, &[d_out, d_in])?;
        let bias = bias.map(|b| self.vector(b, d_out)).transpose()?;
        let w = self.resident(ctx, weight, d_out, d_in)?;
        Linear::from_shared(w, bias)
    }
}
