//! [`DType`]: the element types of named weight tensors.

use std::fmt;

/// The element types a weight tensor may have (those of the safetensors
/// format the library reads; others, such as `F64` or `I64`, are refused
/// with an error when a file is loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 half precision.
    F16,
    /// bfloat16 (the upper half of an `f32`).
    Bf16,
    /// Signed byte.
    I8,
    /// Unsigned byte.
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
            DType::I8 | DType::U8 => 1,
        }
    }

    /// The name the safetensors format uses (`"F32"`, `"F16"`, `"BF16"`,
    /// `"I8"`, `"U8"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::Bf16 => "BF16",
            DType::I8 => "I8",
            DType::U8 => "U8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
