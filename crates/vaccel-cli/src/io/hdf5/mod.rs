//! HDF5 files as ann-benchmarks writes them (datasets `train`, `test`,
//! `neighbors` and `distances`), read by a small reader of the subset h5py
//! writes: superblock versions 0 to 3, object header versions 1 and 2,
//! symbol-table groups and compact link-message groups, compact,
//! contiguous and chunked layouts (version 1 B-tree, single-chunk, implicit
//! and fixed-array chunk indexes) with the deflate and shuffle filters, and
//! 2-D datasets of IEEE `float32` / `float64` or 8- to 64-bit integers.
//! Everything else is refused by name.
//!
//! Every read is checked against the file's length first, so a truncated
//! or corrupt file gives an error with the byte offset of the structure
//! at fault, and no size read from the file is allocated before it is
//! checked against what the file can hold.

mod data;
mod dataset;
mod file;
mod group;
mod object;
#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::{bail, Result};
use vector_accelerate::Matrix;

use self::dataset::{Dataset, Dtype};
use self::file::H5File;
use self::group::{members, Target};
use crate::io::source::{check_unsigned_ids, IdMatrix};

/// Most group levels followed in a dataset path.
const MAX_DEPTH: usize = 32;

/// Reads the 2-D dataset `name` of the HDF5 file at `path` as `f32` rows:
/// floats (`float64` rounded to nearest) and 8-bit integers (their values).
pub fn read_vectors(path: &Path, name: Option<&str>) -> Result<Matrix> {
    vectors(H5File::open(path)?, path, name)
}

/// Reads the 2-D integer dataset `name` of the HDF5 file at `path` as ids.
pub fn read_ids(path: &Path, name: Option<&str>) -> Result<IdMatrix> {
    ids(H5File::open(path)?, path, name)
}

/// [`read_vectors`] of an opened file.
fn vectors(mut f: H5File, path: &Path, name: Option<&str>) -> Result<Matrix> {
    let (name, ds) = find_dataset(&mut f, path, name)?;
    if matches!(ds.dtype, Dtype::Int { size, .. } if size > 1) {
        bail!(
            "dataset '{name}' holds {} values (ids, such as ground-truth neighbours), not vectors",
            ds.dtype.name()
        );
    }
    let values = data::read(&mut f, &ds, data::to_f32)?;
    Ok(Matrix::new(values, ds.shape[1] as usize)?)
}

/// [`read_ids`] of an opened file.
fn ids(mut f: H5File, path: &Path, name: Option<&str>) -> Result<IdMatrix> {
    let (name, ds) = find_dataset(&mut f, path, name)?;
    let Dtype::Int { size, signed, .. } = ds.dtype else {
        bail!(
            "dataset '{name}' holds {} values, not integer ids",
            ds.dtype.name()
        );
    };
    let ids = data::read(&mut f, &ds, data::to_i64)?;
    if size == 8 && !signed {
        check_unsigned_ids(&ids)?;
    }
    let (rows, dim) = (ds.shape[0] as usize, ds.shape[1] as usize);
    Ok(IdMatrix { rows, dim, ids })
}

/// Finds the 2-D dataset `name` of the file at `path`; without a name,
/// says how to choose one and lists the datasets.
fn find_dataset<'a>(
    f: &mut H5File,
    path: &Path,
    name: Option<&'a str>,
) -> Result<(&'a str, Dataset)> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        let list = listing(f, f.root)?;
        bail!(
            "choose a dataset with '{}#NAME'; the file has: {list}",
            path.display()
        );
    };
    let at = resolve(f, name)?;
    let messages = object::messages(f, at)?;
    let Some(ds) = Dataset::from_messages(&messages)? else {
        bail!("'{name}' is a group, not a dataset");
    };
    match ds.shape[..] {
        [rows, dim] if rows > 0 && dim > 0 => Ok((name, ds)),
        [_, _] => bail!(
            "dataset '{name}' is empty (shape ({}, {}))",
            ds.shape[0],
            ds.shape[1]
        ),
        _ => bail!(
            "dataset '{name}' has shape {}; a 2-D dataset (rows, dim) is needed",
            shape_text(&ds.shape)
        ),
    }
}

/// The object header offset of the object at `name` (members separated by
/// `/`) from the root group.
fn resolve(f: &mut H5File, name: &str) -> Result<u64> {
    let mut at = f.root;
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > MAX_DEPTH {
        bail!("the dataset path '{name}' is deeper than {MAX_DEPTH} groups");
    }
    for (i, part) in parts.iter().enumerate() {
        let messages = object::messages(f, at)?;
        let here = parts[..i].join("/");
        let Some(list) = members(f, &messages)? else {
            bail!("'{here}' is a dataset, not a group");
        };
        let Some(m) = list.into_iter().find(|m| m.name == *part) else {
            let list = listing(f, at)?;
            match here.as_str() {
                "" => bail!("no dataset '{name}' in the file, which has: {list}"),
                _ => bail!("no dataset '{name}' in the file; group '{here}' has: {list}"),
            }
        };
        at = match m.target {
            Target::Object(addr) => addr,
            Target::Elsewhere(what) => bail!("'{name}' is {what}, which is not followed"),
        };
    }
    Ok(at)
}

/// The members of the group at `at`, by name, with the type and shape of
/// each dataset: "test (float32 [5 x 5]), train (float32 [7 x 5])".
fn listing(f: &mut H5File, at: u64) -> Result<String> {
    let messages = object::messages(f, at)?;
    let Some(mut list) = members(f, &messages)? else {
        bail!("the object at byte offset {at} is not a group");
    };
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let mut items = Vec::new();
    for m in &list {
        let Target::Object(addr) = m.target else {
            items.push(format!("{} (a link)", m.name));
            continue;
        };
        let messages = object::messages(f, addr)?;
        items.push(match dataset::describe(&messages) {
            Some(text) => format!("{} ({text})", m.name),
            None => format!("{}/ (group)", m.name),
        });
    }
    if items.is_empty() {
        return Ok("no members".to_string());
    }
    Ok(items.join(", "))
}

/// A shape as Python writes a tuple: `(7, 5)`, `(4,)`, `()`.
fn shape_text(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
