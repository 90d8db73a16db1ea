//! [`DType`], [`Element`] and [`Tensor`]: a named array of little-endian
//! values, the unit the weight store holds.

use std::fmt;

use half::{bf16, f16};

use crate::core::dtype::DType;
use crate::core::error::{Error, Result};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for i8 {}
    impl Sealed for u8 {}
}

/// A Rust type that is the element of one [`DType`]: `f32`, [`f16`](struct@f16),
/// [`bf16`], `i8` or `u8` (implemented for these only).
pub trait Element: Copy + sealed::Sealed {
    /// The element type's tag.
    const DTYPE: DType;
    /// Appends the little-endian bytes of `self`.
    #[doc(hidden)]
    fn put(self, out: &mut Vec<u8>);
    /// Reads a value from its `DTYPE.size()` little-endian bytes.
    #[doc(hidden)]
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f16::from_bits(u16::from_le_bytes([b[0], b[1]]))
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::Bf16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        bf16::from_bits(u16::from_le_bytes([b[0], b[1]]))
    }
}

impl Element for i8 {
    const DTYPE: DType = DType::I8;
    fn put(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
    fn get(b: &[u8]) -> Self {
        b[0] as i8
    }
}

impl Element for u8 {
    const DTYPE: DType = DType::U8;
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn get(b: &[u8]) -> Self {
        b[0]
    }
}

/// A named tensor: a shape (row-major, any number of dimensions, `[]` for a
/// scalar), an element type and its values as little-endian bytes (the
/// layout of a safetensors file, so loading and saving copy bytes only).
///
/// ```
/// use vector_accelerate::ml::{DType, Tensor};
/// let t = Tensor::from_values("scale", &[2, 2], &[1i8, -2, 3, -128])?;
/// assert_eq!((t.dtype(), t.shape(), t.len()), (DType::I8, &[2, 2][..], 4));
/// assert_eq!(t.to_f32(), vec![1.0, -2.0, 3.0, -128.0]);
/// assert!(t.values::<u8>().is_err()); // a typed read needs the tensor's own dtype
/// # Ok::<(), vector_accelerate::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor {
    name: String,
    shape: Vec<usize>,
    dtype: DType,
    data: Vec<u8>,
}

impl fmt::Debug for Tensor {
    /// Name, dtype, shape and size; not the values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Elements of a shape, or an error naming the tensor when the product
/// overflows.
fn element_count(name: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(
                "tensor shape",
                format!("'{name}' {shape:?}"),
                "the number of elements overflows usize",
            )
        })
}

impl Tensor {
    /// A tensor from raw little-endian bytes. The byte count must be the
    /// product of `shape` times `dtype.size()`
    /// ([`Error::TensorSize`] otherwise).
    pub fn new(
        name: impl Into<String>,
        dtype: DType,
        shape: &[usize],
        bytes: Vec<u8>,
    ) -> Result<Self> {
        let name = name.into();
        let n = element_count(&name, shape)?;
        let need = n.checked_mul(dtype.size()).ok_or_else(|| {
            Error::invalid(
                "tensor shape",
                format!("'{name}' {shape:?}"),
                "the byte count overflows usize",
            )
        })?;
        if bytes.len() != need {
            return Err(Error::TensorSize {
                name,
                shape: shape.to_vec(),
                dtype,
                expected_bytes: need,
                got_bytes: bytes.len(),
            });
        }
        Ok(Self {
            name,
            shape: shape.to_vec(),
            dtype,
            data: bytes,
        })
    }

    /// A tensor of `T`'s dtype holding `values` (their number must be the
    /// product of `shape`: [`Error::TensorSize`] otherwise).
    pub fn from_values<T: Element>(
        name: impl Into<String>,
        shape: &[usize],
        values: &[T],
    ) -> Result<Self> {
        let mut bytes = Vec::with_capacity(values.len() * T::DTYPE.size());
        for &v in values {
            v.put(&mut bytes);
        }
        Self::new(name, T::DTYPE, shape, bytes)
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_name(&mut self, name: String) {
        self.name = name;
    }

    /// The shape (row-major; `[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements (the product of the shape).
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the tensor has no element (a zero in its shape).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes of the values (`len() * dtype().size()`).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// The values as little-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The values as `T`, which must be the tensor's own type
    /// ([`Error::WrongDtype`] otherwise; no conversion is made).
    pub fn values<T: Element>(&self) -> Result<Vec<T>> {
        if self.dtype != T::DTYPE {
            return Err(Error::WrongDtype {
                name: self.name.clone(),
                expected: T::DTYPE,
                found: self.dtype,
            });
        }
        Ok(self
            .data
            .chunks_exact(self.dtype.size())
            .map(T::get)
            .collect())
    }

    /// The values widened to `f32`, exactly for every dtype (f16, bf16, i8
    /// and u8 values are all representable in `f32`; a bf16 NaN keeps its
    /// payload, an f16 NaN becomes a quiet NaN).
    pub fn to_f32(&self) -> Vec<f32> {
        let c = self.data.chunks_exact(self.dtype.size());
        match self.dtype {
            DType::F32 => c.map(f32::get).collect(),
            DType::F16 => c.map(|b| f16::get(b).to_f32()).collect(),
            // The bf16 bits are the upper half of the f32 (NaN payloads kept).
            DType::Bf16 => c
                .map(|b| f32::from_bits((bf16::get(b).to_bits() as u32) << 16))
                .collect(),
            DType::I8 => c.map(|b| i8::get(b) as f32).collect(),
            DType::U8 => c.map(|b| u8::get(b) as f32).collect(),
        }
    }
}
