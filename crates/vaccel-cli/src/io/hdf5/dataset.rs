//! What a dataset's header says: shape, element type, layout and filters.

use anyhow::Result;

use super::file::{Block, UNDEFINED};
use super::object::{kind, Message};

/// Element types the reader converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dtype {
    /// IEEE float of 4 or 8 bytes.
    Float { size: usize, big_endian: bool },
    /// Integer of 1, 2, 4 or 8 bytes.
    Int {
        size: usize,
        signed: bool,
        big_endian: bool,
    },
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Float { size, .. } | Dtype::Int { size, .. } => size,
        }
    }

    /// The NumPy name, such as `float32` or `uint8`, and the byte order
    /// when big-endian.
    pub fn name(self) -> String {
        let (base, be) = match self {
            Dtype::Float { size, big_endian } => (format!("float{}", 8 * size), big_endian),
            Dtype::Int {
                size,
                signed,
                big_endian,
            } => {
                let u = if signed { "" } else { "u" };
                (format!("{u}int{}", 8 * size), big_endian && size > 1)
            }
        };
        if be {
            format!("big-endian {base}")
        } else {
            base
        }
    }
}

/// Where a dataset's elements are.
pub(super) enum Layout {
    /// In the header itself.
    Compact(Block),
    /// One run of bytes at `addr`.
    Contiguous { addr: u64, size: u64, field_at: u64 },
    /// Chunks of `chunk` elements per dimension, found through `index`.
    Chunked {
        chunk: Vec<u64>,
        index: Index,
        /// Partial edge chunks are stored unfiltered.
        edge_unfiltered: bool,
        /// Offset of the layout message, for messages.
        field_at: u64,
    },
}

/// How a chunked dataset finds its chunks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Index {
    /// A version 1 B-tree (layout version 3; every chunk index of old files).
    BTree(u64),
    /// One chunk, with its stored size and filter mask when filtered.
    Single {
        addr: u64,
        filtered: Option<(u64, u32)>,
    },
    /// Unfiltered chunks stored one after another.
    Implicit(u64),
    /// A fixed array of chunk addresses.
    FixedArray(u64),
}

/// One filter of a chunked dataset's pipeline.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    /// The filter's id: 1 deflate, 2 shuffle, ...
    pub id: u16,
    /// Its parameters.
    pub values: Vec<u32>,
}

/// A dataset's description.
pub(super) struct Dataset {
    /// Current size of each dimension.
    pub shape: Vec<u64>,
    /// Largest size of each dimension ([`UNDEFINED`]: unlimited).
    pub max_shape: Vec<u64>,
    /// The element type.
    pub dtype: Dtype,
    /// Where the elements are.
    pub layout: Layout,
    /// The filters chunks go through, in the order they were applied.
    pub filters: Vec<Filter>,
}

impl Dataset {
    /// Reads the dataset described by `messages`, or `None` when they are not
    /// a dataset's (no layout message).
    pub fn from_messages(messages: &[Message]) -> Result<Option<Dataset>> {
        let find = |k: u16| messages.iter().find(|m| m.kind == k);
        let Some(layout) = find(kind::LAYOUT) else {
            return Ok(None);
        };
        let (Some(space), Some(dtype)) = (find(kind::DATASPACE), find(kind::DATATYPE)) else {
            return Err(layout
                .body
                .corrupt(0, "a dataset without a dataspace or datatype"));
        };
        for m in [space, dtype, layout]
            .into_iter()
            .chain(find(kind::FILTERS))
        {
            if m.flags & 0x02 != 0 {
                return Err(m.body.corrupt(
                    0,
                    "a shared message (a committed datatype or shared dataspace), not supported",
                ));
            }
        }
        let (shape, max_shape) = dataspace(space.body.clone().labelled("dataspace message"))?;
        Ok(Some(Dataset {
            dtype: datatype(dtype.body.clone().labelled("datatype message"))?,
            layout: layout_of(
                layout.body.clone().labelled("data layout message"),
                shape.len(),
            )?,
            filters: match find(kind::FILTERS) {
                Some(m) => filters(m.body.clone().labelled("filter pipeline message"))?,
                None => Vec::new(),
            },
            shape,
            max_shape,
        }))
    }
}

/// A dataset's type and shape, such as `float32 [7 x 5]`, for listings
/// (an element type the reader refuses shows as `unsupported type`), or
/// `None` when `messages` are not a dataset's.
pub(super) fn describe(messages: &[Message]) -> Option<String> {
    let find = |k: u16| messages.iter().find(|m| m.kind == k);
    find(kind::LAYOUT)?;
    let dtype = find(kind::DATATYPE)
        .and_then(|m| datatype(m.body.clone()).ok())
        .map_or("unsupported type".to_string(), Dtype::name);
    let shape = find(kind::DATASPACE)
        .and_then(|m| dataspace(m.body.clone()).ok())
        .map_or("?".to_string(), |(s, _)| {
            s.iter().map(u64::to_string).collect::<Vec<_>>().join(" x ")
        });
    Some(format!("{dtype} [{shape}]"))
}

/// A dataspace message: the dimensions and their maximums.
fn dataspace(mut b: Block) -> Result<(Vec<u64>, Vec<u64>)> {
    let version = b.u8()?;
    let rank = b.u8()? as usize;
    let flags = b.u8()?;
    match version {
        1 => b.skip(5)?,
        2 => match b.u8()? {
            0 | 1 => {}
            _ => return Ok((Vec::new(), Vec::new())), // null dataspace: no elements
        },
        _ => return Err(b.corrupt(3, format_args!("dataspace version {version}"))),
    }
    if rank > 32 {
        return Err(b.corrupt(0, format_args!("rank {rank} (at most 32)")));
    }
    let shape = (0..rank).map(|_| b.length()).collect::<Result<Vec<_>>>()?;
    let max_shape = if flags & 1 != 0 {
        (0..rank).map(|_| b.length()).collect::<Result<Vec<_>>>()?
    } else {
        shape.clone()
    };
    Ok((shape, max_shape))
}

/// A datatype message: little- or big-endian IEEE floats of 4 or 8 bytes and
/// integers of 1, 2, 4 or 8 bytes; every other type is refused by name.
fn datatype(mut b: Block) -> Result<Dtype> {
    let class_version = b.u8()?;
    let bits = [b.u8()?, b.u8()?, b.u8()?];
    let size = b.u32()? as usize;
    let class = class_version & 0x0f;
    let big_endian = bits[0] & 0x01 != 0;
    match class {
        0 => {
            let (offset, precision) = (b.u16()?, b.u16()?);
            if !matches!(size, 1 | 2 | 4 | 8) || offset != 0 || usize::from(precision) != 8 * size {
                return Err(b.corrupt(
                    8,
                    format_args!(
                        "an integer type of {size} bytes with {precision} bits at bit {offset} \
                     (supported: 8, 16, 32 or 64 bits)"
                    ),
                ));
            }
            let signed = bits[0] & 0x08 != 0;
            Ok(Dtype::Int {
                size,
                signed,
                big_endian,
            })
        }
        1 => float_type(b, size, bits[0]),
        _ => Err(b.corrupt(
            8,
            format_args!(
                "element type class {class} ({}; supported: float32, float64 and integers)",
                match class {
                    2 => "time",
                    3 => "string",
                    4 => "bitfield",
                    5 => "opaque",
                    6 => "compound",
                    7 => "reference",
                    8 => "enum, as h5py stores numpy bool arrays",
                    9 => "variable-length",
                    10 => "array",
                    _ => "unknown",
                }
            ),
        )),
    }
}

/// The properties of a floating-point type: only the IEEE layouts of
/// `float32` and `float64` are accepted.
fn float_type(mut b: Block, size: usize, bits0: u8) -> Result<Dtype> {
    if bits0 & 0x40 != 0 {
        return Err(b.corrupt(0, "a VAX-order float type"));
    }
    let props = (
        b.u16()?,
        b.u16()?,
        b.u8()?,
        b.u8()?,
        b.u8()?,
        b.u8()?,
        b.u32()?,
    );
    let ieee = match size {
        4 => (0, 32, 23, 8, 0, 23, 127),
        8 => (0, 64, 52, 11, 0, 52, 1023),
        _ => (1, 0, 0, 0, 0, 0, 0),
    };
    if props != ieee {
        let (_, precision, _, exp, _, mantissa, _) = props;
        return Err(b.corrupt(
            12,
            format_args!(
            "a float type of {size} bytes ({precision} bits, {exp}-bit exponent, {mantissa}-bit \
             mantissa; supported: IEEE float32 and float64)"
        ),
        ));
    }
    Ok(Dtype::Float {
        size,
        big_endian: bits0 & 0x01 != 0,
    })
}

/// A data layout message (versions 3 to 5; version 5, from HDF5 2.0, is
/// laid out as version 4) of a dataset of `rank` dimensions.
fn layout_of(mut b: Block, rank: usize) -> Result<Layout> {
    let field_at = b.offset_of(0);
    let version = b.u8()?;
    if !(3..=5).contains(&version) {
        return Err(b.corrupt(
            1,
            format_args!("layout version {version} (supported: 3 to 5)"),
        ));
    }
    match b.u8()? {
        0 => {
            let n = b.u16()? as usize;
            Ok(Layout::Compact(b.sub_block(n)?))
        }
        1 => Ok(Layout::Contiguous {
            addr: b.address()?,
            size: b.length()?,
            field_at,
        }),
        2 if version == 3 => {
            let dims = b.u8()? as usize;
            let addr = b.address()?;
            let chunk = chunk_dims(&mut b, dims, rank, 4)?;
            Ok(Layout::Chunked {
                chunk,
                index: Index::BTree(addr),
                edge_unfiltered: false,
                field_at,
            })
        }
        2 => chunked_v4(b, rank, field_at),
        3 => Err(b.corrupt(1, "a virtual dataset, not supported")),
        class => Err(b.corrupt(1, format_args!("layout class {class}"))),
    }
}

/// The chunk dimensions: `dims` sizes of `width` bytes, the last being the
/// element size, which is dropped.
fn chunk_dims(b: &mut Block, dims: usize, rank: usize, width: usize) -> Result<Vec<u64>> {
    if dims != rank + 1 {
        return Err(b.corrupt(
            0,
            format_args!(
                "chunks of {} dimensions for a dataset of {rank}",
                dims.saturating_sub(1)
            ),
        ));
    }
    let mut chunk = (0..dims)
        .map(|_| b.uint(width))
        .collect::<Result<Vec<_>>>()?;
    chunk.pop();
    if chunk.contains(&0) {
        return Err(b.corrupt(0, "a chunk dimension of 0"));
    }
    Ok(chunk)
}

/// The chunked class of a version 4 layout message: flags, chunk sizes and
/// the chunk index.
fn chunked_v4(mut b: Block, rank: usize, field_at: u64) -> Result<Layout> {
    let flags = b.u8()?;
    let dims = b.u8()? as usize;
    let width = b.u8()? as usize;
    if !(1..=8).contains(&width) {
        return Err(b.corrupt(1, format_args!("chunk sizes of {width} bytes")));
    }
    let chunk = chunk_dims(&mut b, dims, rank, width)?;
    let index_type = b.u8()?;
    let index = match index_type {
        1 => {
            let filtered = if flags & 0x02 != 0 {
                Some((b.length()?, b.u32()?))
            } else {
                None
            };
            Index::Single {
                addr: b.address()?,
                filtered,
            }
        }
        2 => Index::Implicit(b.address()?),
        3 => {
            b.skip(1)?; // page bits, also in the array's header
            Index::FixedArray(b.address()?)
        }
        4 | 5 => {
            return Err(b.corrupt(
                1,
                format_args!(
                    "the {} chunk index (a dataset with an unlimited dimension in a file \
                 written with libver='latest'), not supported; rewrite it without maxshape",
                    if index_type == 4 {
                        "extensible array"
                    } else {
                        "version 2 B-tree"
                    }
                ),
            ))
        }
        t => return Err(b.corrupt(1, format_args!("chunk index type {t}"))),
    };
    Ok(Layout::Chunked {
        chunk,
        index,
        edge_unfiltered: flags & 0x01 != 0,
        field_at,
    })
}

/// A filter pipeline message (versions 1 and 2).
fn filters(mut b: Block) -> Result<Vec<Filter>> {
    let version = b.u8()?;
    let count = b.u8()?;
    match version {
        1 => b.skip(6)?,
        2 => {}
        _ => return Err(b.corrupt(2, format_args!("filter pipeline version {version}"))),
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let id = b.u16()?;
        let name_len = if version == 1 || id >= 256 {
            b.u16()?
        } else {
            0
        };
        let _flags = b.u16()?;
        let n = b.u16()? as usize;
        b.skip(name_len as usize)?;
        let values = (0..n).map(|_| b.u32()).collect::<Result<Vec<_>>>()?;
        if version == 1 && n % 2 == 1 {
            b.skip(4)?;
        }
        out.push(Filter { id, values });
    }
    Ok(out)
}

/// Whether the dimension `max` is unlimited.
pub(super) fn unlimited(max: u64) -> bool {
    max == UNDEFINED
}
