//! 16-bit row formats (bf16, f16): their kinds and row layout.

/// A 16-bit float format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HalfKind {
    Bf16,
    F16,
}

/// Elements per row of the 16-bit copies: `dim` rounded up to 8 (16-byte
/// rows for the tile loads), padding zero.
pub(crate) fn half_dim(dim: usize) -> usize {
    dim.next_multiple_of(8)
}

impl HalfKind {
    /// The `f32` value of one 16-bit pattern (exact).
    pub(crate) fn widen(self, bits: u16) -> f32 {
        match self {
            HalfKind::Bf16 => f32::from_bits((bits as u32) << 16),
            HalfKind::F16 => half::f16::from_bits(bits).to_f32(),
        }
    }
}
