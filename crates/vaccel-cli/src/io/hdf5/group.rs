//! Group members: old-style groups (a symbol table: a version 1 B-tree of
//! symbol nodes, names in a local heap) and new-style compact groups (link
//! messages in the header).

use anyhow::{bail, Result};

use super::file::{Block, H5File, UNDEFINED};
use super::object::{kind, Message};

/// One member of a group.
pub(super) struct Member {
    /// The link name.
    pub name: String,
    /// What the link points to.
    pub target: Target,
}

/// The target of a link.
pub(super) enum Target {
    /// An object in this file, by object header offset.
    Object(u64),
    /// A soft or external link (not followed).
    Elsewhere(&'static str),
}

/// The members of the group whose header holds `messages`, or `None` when
/// the object is not a group.
pub(super) fn members(f: &mut H5File, messages: &[Message]) -> Result<Option<Vec<Member>>> {
    if let Some(m) = messages.iter().find(|m| m.kind == kind::SYMBOL_TABLE) {
        return symbol_table(f, m.body.clone().labelled("symbol table message")).map(Some);
    }
    let mut is_group = false;
    let mut out = Vec::new();
    for m in messages {
        match m.kind {
            kind::LINK_INFO => {
                check_compact(m.body.clone().labelled("link info message"))?;
                is_group = true;
            }
            kind::LINK => {
                out.push(link(m.body.clone().labelled("link message"))?);
                is_group = true;
            }
            _ => {}
        }
    }
    Ok(is_group.then_some(out))
}

/// Refuses a group whose links live in a fractal heap ("dense" storage).
fn check_compact(mut b: Block) -> Result<()> {
    let _version = b.u8()?;
    let flags = b.u8()?;
    if flags & 0x01 != 0 {
        b.skip(8)?;
    }
    if b.raw_address()? != UNDEFINED {
        return Err(b.corrupt(
            0,
            "a group keeping its links in a fractal heap (dense storage, used by \
             libver='latest' beyond 8 members), not supported",
        ));
    }
    Ok(())
}

/// A link message: the name and the target.
fn link(mut b: Block) -> Result<Member> {
    let version = b.u8()?;
    if version != 1 {
        return Err(b.corrupt(1, format_args!("link message version {version}")));
    }
    let flags = b.u8()?;
    let link_type = if flags & 0x08 != 0 { b.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        b.skip(8)?; // creation order
    }
    if flags & 0x10 != 0 {
        b.skip(1)?; // character set
    }
    let len = b.uint(1 << (flags & 3))? as usize;
    let name = String::from_utf8_lossy(b.take(len)?).into_owned();
    let target = match link_type {
        0 => Target::Object(b.address()?),
        1 => Target::Elsewhere("a soft link"),
        64 => Target::Elsewhere("an external link"),
        t => return Err(b.corrupt(0, format_args!("link type {t}"))),
    };
    Ok(Member { name, target })
}

/// The members of an old-style group from its symbol table message.
fn symbol_table(f: &mut H5File, mut b: Block) -> Result<Vec<Member>> {
    let btree = b.address()?;
    let heap = b.address()?;
    let names = local_heap(f, heap)?;
    let mut out = Vec::new();
    let mut budget = f.len / 16;
    walk(f, btree, None, &names, &mut out, &mut budget)?;
    Ok(out)
}

/// The data segment of the local heap at `at`.
fn local_heap(f: &mut H5File, at: u64) -> Result<Block> {
    let n = 8 + 2 * f.length_size + f.offset_size;
    let mut h = f.read(at, n as u64, "local heap")?;
    h.signature(b"HEAP")?;
    h.skip(4)?;
    let size = h.length()?;
    h.skip(f.length_size)?;
    let data = h.address()?;
    f.read(data, size, "local heap data segment")
}

/// The NUL-terminated name at `offset` in a local heap's data.
fn heap_name(heap: &Block, offset: u64) -> Result<String> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let Some(rest) = heap.bytes.get(start..) else {
        bail!(
            "corrupt file: a name at offset {offset} of the local heap data at byte offset {} \
             ({} bytes)",
            heap.at,
            heap.bytes.len()
        );
    };
    let Some(end) = rest.iter().position(|&c| c == 0) else {
        bail!(
            "corrupt file: the name at byte offset {} has no terminating zero",
            heap.at + offset
        );
    };
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Visits the group B-tree node at `at` (of `level`, when known from its
/// parent), appending the members of its symbol nodes.
fn walk(
    f: &mut H5File,
    at: u64,
    level: Option<u8>,
    heap: &Block,
    out: &mut Vec<Member>,
    budget: &mut u64,
) -> Result<()> {
    let mut node = btree_node(f, at, 0, level, f.length_size, budget)?;
    for _ in 0..node.entries {
        node.body.skip(f.length_size)?;
        let child = node.body.address()?;
        if node.level == 0 {
            symbol_node(f, child, heap, out)?;
        } else {
            walk(f, child, Some(node.level - 1), heap, out, budget)?;
        }
    }
    Ok(())
}

/// A version 1 B-tree node: its level, entry count, and its keys and
/// children (`entries` pairs of a key and a child address, then a key).
pub(super) struct BTreeNode {
    /// 0 for a leaf.
    pub level: u8,
    /// Children in the node.
    pub entries: usize,
    /// The keys and children, cursor on the first key.
    pub body: Block,
}

/// Reads the version 1 B-tree node at `at` of `node_type` (0: group, 1:
/// chunks) with keys of `key_size` bytes, checking its level against the
/// one its parent implies and spending one unit of `budget` (a corrupt tree
/// that revisits nodes runs out of it).
pub(super) fn btree_node(
    f: &mut H5File,
    at: u64,
    node_type: u8,
    level: Option<u8>,
    key_size: usize,
    budget: &mut u64,
) -> Result<BTreeNode> {
    if *budget == 0 {
        bail!("corrupt file: the B-tree node at byte offset {at} is part of a loop");
    }
    *budget -= 1;
    let o = f.offset_size;
    let mut h = f.read(at, (8 + 2 * o) as u64, "B-tree node")?;
    h.signature(b"TREE")?;
    let t = h.u8()?;
    let node_level = h.u8()?;
    let entries = h.u16()? as usize;
    if t != node_type || level.is_some_and(|l| l != node_level) {
        return Err(h.corrupt(
            4,
            format_args!(
                "a B-tree node of type {t} and level {node_level} where one of type \
                 {node_type} and level {} belongs",
                level.map_or("any".to_string(), |l| l.to_string())
            ),
        ));
    }
    let size = entries * (key_size + o) + key_size;
    Ok(BTreeNode {
        level: node_level,
        entries,
        body: f.read(at + (8 + 2 * o) as u64, size as u64, "B-tree node")?,
    })
}

/// Appends the members of the symbol node at `at`.
fn symbol_node(f: &mut H5File, at: u64, heap: &Block, out: &mut Vec<Member>) -> Result<()> {
    let mut h = f.read(at, 8, "symbol table node")?;
    h.signature(b"SNOD")?;
    h.skip(2)?;
    let count = h.u16()? as u64;
    let entry = 2 * f.offset_size as u64 + 24;
    let mut b = f.read(at + 8, count * entry, "symbol table node")?;
    for _ in 0..count {
        let name = b.raw_address()?;
        let header = b.address()?;
        b.skip(24)?;
        out.push(Member {
            name: heap_name(heap, name)?,
            target: Target::Object(header),
        });
    }
    Ok(())
}
