//! Object headers (versions 1 and 2, with continuation blocks): the
//! messages an object is made of.

use anyhow::{bail, Result};

use super::file::{Block, H5File, UNDEFINED};

/// Message types the reader uses.
pub(super) mod kind {
    /// Dataspace: the shape.
    pub const DATASPACE: u16 = 0x0001;
    /// Link info: where a group keeps its links when there are many.
    pub const LINK_INFO: u16 = 0x0002;
    /// Datatype: the element type.
    pub const DATATYPE: u16 = 0x0003;
    /// Link: one member of a group.
    pub const LINK: u16 = 0x0006;
    /// Data layout: where the elements are.
    pub const LAYOUT: u16 = 0x0008;
    /// Filter pipeline: how chunks are compressed.
    pub const FILTERS: u16 = 0x000B;
    /// Continuation: more messages elsewhere.
    pub const CONTINUATION: u16 = 0x0010;
    /// Symbol table: the members of an old-style group.
    pub const SYMBOL_TABLE: u16 = 0x0011;
}

/// Most continuation blocks followed for one object.
const MAX_BLOCKS: usize = 1024;

/// One header message: its type, flags and body.
pub(super) struct Message {
    /// The message type ([`kind`]).
    pub kind: u16,
    /// The message flags (bit 1: shared, stored elsewhere).
    pub flags: u8,
    /// The body, with its file offset.
    pub body: Block,
}

/// How a block's messages are laid out.
#[derive(Clone, Copy)]
struct Format {
    /// A version 2 header (one-byte types, no alignment).
    v2: bool,
    /// Version 2 messages carry a two-byte creation order.
    creation_order: bool,
}

/// The messages of the object header at byte offset `at`, with those of
/// its continuation blocks.
pub(super) fn messages(f: &mut H5File, at: u64) -> Result<Vec<Message>> {
    let (first, format) = first_block(f, at)?;
    let mut pending = vec![first];
    let mut seen = vec![at];
    let mut out = Vec::new();
    while let Some(block) = pending.pop() {
        for m in split(block, format)? {
            if m.kind != kind::CONTINUATION {
                out.push(m);
                continue;
            }
            let next = continuation(f, &m, format.v2)?;
            if seen.contains(&next.at) || seen.len() >= MAX_BLOCKS {
                return Err(m.body.corrupt(0, "a loop of header continuation blocks"));
            }
            seen.push(next.at);
            pending.push(next);
        }
    }
    Ok(out)
}

/// The first block of messages of the header at `at`, and its format.
fn first_block(f: &mut H5File, at: u64) -> Result<(Block, Format)> {
    let mut h = f.read(at, 16, "object header")?;
    if h.bytes[..4] != *b"OHDR" {
        let version = h.u8()?;
        if version != 1 {
            bail!(
                "corrupt or unsupported file: the object header at byte offset {at} has \
                 version {version} (supported: 1, or 2 with the signature 'OHDR')"
            );
        }
        h.skip(7)?;
        let size = h.u32()?;
        let format = Format {
            v2: false,
            creation_order: false,
        };
        return Ok((f.read(at + 16, u64::from(size), "object header")?, format));
    }
    h.skip(4)?;
    let version = h.u8()?;
    if version != 2 {
        return Err(h.corrupt(1, format_args!("object header version {version}")));
    }
    let flags = h.u8()?;
    let times = if flags & 0x20 != 0 { 16 } else { 0 };
    let phase = if flags & 0x10 != 0 { 4 } else { 0 };
    let width = 1usize << (flags & 3);
    let prefix = 6 + times + phase + width;
    let mut p = f.read(at, prefix as u64, "object header")?;
    p.skip(prefix - width)?;
    let size = p.uint(width)?;
    let format = Format {
        v2: true,
        creation_order: flags & 0x04 != 0,
    };
    Ok((f.read(at + prefix as u64, size, "object header")?, format))
}

/// Splits a block of messages, from its cursor on.
fn split(mut b: Block, format: Format) -> Result<Vec<Message>> {
    let head = match (format.v2, format.creation_order) {
        (false, _) => 8,
        (true, false) => 4,
        (true, true) => 6,
    };
    let mut out = Vec::new();
    // Fewer bytes than a message header are padding (a gap).
    while b.left() >= head {
        let (kind, size, flags) = if format.v2 {
            let (k, s, fl) = (u16::from(b.u8()?), b.u16()?, b.u8()?);
            b.skip(head - 4)?;
            (k, s, fl)
        } else {
            let (k, s, fl) = (b.u16()?, b.u16()?, b.u8()?);
            b.skip(3)?;
            (k, s, fl)
        };
        let body = b.sub_block(size as usize)?;
        out.push(Message { kind, flags, body });
    }
    Ok(out)
}

/// The block a continuation message points to, its cursor on the first
/// message (after a version 2 block's signature; its checksum cut off).
fn continuation(f: &mut H5File, m: &Message, v2: bool) -> Result<Block> {
    let mut c = m.body.clone();
    let addr = c.address()?;
    let len = c.length()?;
    if addr == UNDEFINED {
        return Err(c.corrupt(0, "an undefined continuation address"));
    }
    let mut block = f.read(addr, len, "object header continuation block")?;
    if v2 {
        if block.bytes.len() < 8 {
            return Err(block.corrupt(0, "a block shorter than its signature and checksum"));
        }
        block.signature(b"OCHK")?;
        let end = block.bytes.len() - 4;
        block.bytes.truncate(end);
    }
    Ok(block)
}
