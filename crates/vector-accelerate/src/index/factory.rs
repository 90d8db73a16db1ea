//! Index factory strings (`"Flat"`, `"IVF4096,Flat"`, `"IVF4096,SQ8"`,
//! `"IVF4096,PQ32x8,Refine"`): what they mean and how they parse.

use std::fmt;

use crate::core::error::{Error, Result};

/// How an IVF index stores the vectors of its lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Exact `f32` vectors.
    Flat,
    /// Scalar codes of 8 or 4 bits per value.
    Sq(u8),
    /// Product codes: `m` sub-vectors of `nbits` bits.
    Pq {
        /// Sub-quantizers.
        m: usize,
        /// Bits per sub-code.
        nbits: u32,
    },
}

/// A parsed factory string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    /// Exact search over every vector.
    Flat,
    /// Inverted lists around `nlist` k-means centroids (`None`: chosen from
    /// the training set's size), their vectors stored as `encoding`,
    /// optionally with exact vectors kept to re-rank (`refine`).
    Ivf {
        /// Lists, when given.
        nlist: Option<usize>,
        /// How list vectors are stored.
        encoding: Encoding,
        /// Exact re-ranking from stored vectors.
        refine: bool,
    },
    /// A proximity graph of `degree` neighbours per vector.
    Graph {
        /// Neighbours per vector.
        degree: usize,
    },
}

/// Neighbours per vector of a graph index when the factory names none.
const DEFAULT_DEGREE: usize = 32;
/// Neighbours per vector of a graph index at most.
const MAX_DEGREE: usize = 1024;

/// What the factory accepts, for error messages.
const GRAMMAR: &str = "expected Flat, Graph<degree> (Graph32), or IVF<nlist>,<codes>[,Refine] \
                       with <codes> one of Flat, SQ8, SQ4, PQ<m> or PQ<m>x<nbits> (nlist may be \
                       left out: IVF,Flat)";

impl Spec {
    /// Parses a factory string (case-insensitive, spaces ignored).
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadFactory {
            spec: spec.to_string(),
            reason,
        };
        let clean: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
        let parts: Vec<String> = clean.split(',').map(|p| p.to_ascii_uppercase()).collect();
        match parts.as_slice() {
            [one] if one == "FLAT" => Ok(Spec::Flat),
            [graph] if graph.starts_with("GRAPH") => {
                let degree = match &graph[5..] {
                    "" => DEFAULT_DEGREE,
                    d => positive(d, "graph degree").map_err(&bad)?,
                };
                if !(2..=MAX_DEGREE).contains(&degree) {
                    return Err(bad(format!(
                        "graph degree {degree}: expected 2 to {MAX_DEGREE}"
                    )));
                }
                Ok(Spec::Graph { degree })
            }
            [ivf, codes, rest @ ..] if ivf.starts_with("IVF") => {
                let nlist = match &ivf[3..] {
                    "" => None,
                    n => Some(positive(n, "nlist").map_err(&bad)?),
                };
                let encoding = encoding(codes).map_err(&bad)?;
                let refine = match rest {
                    [] => false,
                    [r] if r == "REFINE" || r == "RFLAT" => true,
                    _ => return Err(bad(format!("unexpected '{}'; {GRAMMAR}", rest.join(",")))),
                };
                if refine && encoding == Encoding::Flat {
                    return Err(bad("Refine needs coded lists (SQ or PQ), not Flat".into()));
                }
                Ok(Spec::Ivf {
                    nlist,
                    encoding,
                    refine,
                })
            }
            _ => Err(bad(GRAMMAR.into())),
        }
    }
}

/// The list encoding of one factory component.
fn encoding(codes: &str) -> std::result::Result<Encoding, String> {
    match codes {
        "FLAT" => Ok(Encoding::Flat),
        "SQ8" => Ok(Encoding::Sq(8)),
        "SQ4" => Ok(Encoding::Sq(4)),
        pq if pq.starts_with("PQ") => {
            let (m, nbits) = match pq[2..].split_once('X') {
                Some((m, b)) => (m, positive(b, "PQ bits")?),
                None => (&pq[2..], 8),
            };
            let nbits = u32::try_from(nbits).map_err(|_| format!("PQ bits {nbits}"))?;
            if !(1..=16).contains(&nbits) {
                return Err(format!("PQ bits {nbits}: expected 1 to 16"));
            }
            Ok(Encoding::Pq {
                m: positive(m, "PQ sub-quantizers")?,
                nbits,
            })
        }
        other => Err(format!("unknown list codes '{other}'; {GRAMMAR}")),
    }
}

/// A positive integer field.
fn positive(s: &str, what: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} '{s}' is not a positive integer; {GRAMMAR}")),
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Flat => write!(f, "Flat"),
            Spec::Graph { degree } => write!(f, "Graph{degree}"),
            Spec::Ivf {
                nlist,
                encoding,
                refine,
            } => {
                match nlist {
                    Some(n) => write!(f, "IVF{n},")?,
                    None => write!(f, "IVF,")?,
                }
                match encoding {
                    Encoding::Flat => write!(f, "Flat")?,
                    Encoding::Sq(b) => write!(f, "SQ{b}")?,
                    Encoding::Pq { m, nbits } => write!(f, "PQ{m}x{nbits}")?,
                }
                if *refine {
                    write!(f, ",Refine")?;
                }
                Ok(())
            }
        }
    }
}

/// The number of inverted lists recommended for `n` vectors: about
/// `4 sqrt(n)` (lists of about `sqrt(n) / 4` vectors), rounded to a power of
/// two, at least 1 and at most `n / 39` so k-means sees 39 or more training
/// points per centroid.
///
/// ```
/// use vector_accelerate::index::recommended_nlist;
/// assert_eq!(recommended_nlist(1_000_000), 4096);
/// assert_eq!(recommended_nlist(10), 1);
/// ```
pub fn recommended_nlist(n: usize) -> usize {
    let target = 4.0 * (n as f64).sqrt();
    let pow = 2f64.powf(target.max(1.0).log2().round()) as usize;
    pow.min(n / 39).max(1)
}
