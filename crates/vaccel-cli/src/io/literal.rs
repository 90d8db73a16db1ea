//! A parser for the small subset of Python literals found in `.npy`
//! headers: dicts, tuples, lists, strings, integers, `True`, `False` and
//! `None`.

use anyhow::{bail, Result};

/// One parsed Python literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string.
    Str(String),
    /// A non-negative integer (npy headers hold no negative numbers).
    Int(u128),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A tuple, `(a, b)`.
    Tuple(Vec<Literal>),
    /// A list, `[a, b]`.
    List(Vec<Literal>),
    /// A dict, `{k: v}`, in source order.
    Dict(Vec<(Literal, Literal)>),
}

impl Literal {
    /// Looks `key` up in a dict literal with string keys.
    pub fn get(&self, key: &str) -> Option<&Literal> {
        match self {
            Literal::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Literal::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn seq(f: &mut std::fmt::Formatter<'_>, items: &[Literal]) -> std::fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Literal::Str(s) => write!(f, "'{s}'"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Bool(true) => write!(f, "True"),
            Literal::Bool(false) => write!(f, "False"),
            Literal::None => write!(f, "None"),
            Literal::Tuple(items) => {
                write!(f, "(")?;
                seq(f, items)?;
                if items.len() == 1 {
                    write!(f, ",")?;
                }
                write!(f, ")")
            }
            Literal::List(items) => {
                write!(f, "[")?;
                seq(f, items)?;
                write!(f, "]")
            }
            Literal::Dict(items) => {
                write!(f, "{{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// Parses `text` as one literal followed only by whitespace.
pub fn parse(text: &str) -> Result<Literal> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        bail!(
            "unexpected text after the header dict at character {}",
            p.pos
        );
    }
    Ok(value)
}

/// Nesting deeper than this is rejected (headers nest two or three levels).
const MAX_DEPTH: usize = 32;

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal> {
        if depth > MAX_DEPTH {
            bail!("header nests too deeply");
        }
        self.skip_ws();
        match self.peek() {
            Some('{') => self.dict(depth),
            Some('(') => Ok(Literal::Tuple(self.items(')', depth)?)),
            Some('[') => Ok(Literal::List(self.items(']', depth)?)),
            Some(q @ ('\'' | '"')) => self.string(q),
            Some(c) if c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => self.word(),
            Some(c) => bail!("unexpected character '{c}' at position {}", self.pos),
            None => bail!("header ends too early"),
        }
    }

    /// Items of a tuple or list up to `close`; the opening bracket is current.
    fn items(&mut self, close: char, depth: usize) -> Result<Vec<Literal>> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => bail!("expected ',' or '{close}' at position {}", self.pos),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Literal> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Literal::Dict(items));
            }
            let key = self.value(depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(':') {
                bail!("expected ':' after a dict key at position {}", self.pos);
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            items.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                _ => bail!("expected ',' or '}}' at position {}", self.pos),
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<Literal> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => bail!("unterminated string in the header"),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(Literal::Str(s));
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => s.push(c),
                        None => bail!("unterminated string in the header"),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Literal> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        // Python 2 wrote long integers with an `L` suffix.
        if matches!(self.peek(), Some('L' | 'l')) {
            self.pos += 1;
        }
        digits
            .parse()
            .map(Literal::Int)
            .map_err(|_| anyhow::anyhow!("integer {digits} in the header is too large"))
    }

    fn word(&mut self) -> Result<Literal> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "True" => Ok(Literal::Bool(true)),
            "False" => Ok(Literal::Bool(false)),
            "None" => Ok(Literal::None),
            _ => bail!("unexpected word '{word}' in the header"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_typical_header() {
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!(h.get("descr"), Some(&Literal::Str("<f4".into())));
        assert_eq!(h.get("fortran_order"), Some(&Literal::Bool(false)));
        assert_eq!(
            h.get("shape"),
            Some(&Literal::Tuple(vec![Literal::Int(3), Literal::Int(4)]))
        );
    }

    #[test]
    fn parses_structured_descr_and_python2_longs() {
        let h = parse("{'descr': [('a', '<f4')], 'shape': (3L,)}").unwrap();
        assert_eq!(h.get("shape").unwrap().to_string(), "(3,)");
        assert_eq!(h.get("descr").unwrap().to_string(), "[('a', '<f4')]");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("{'descr': '<f4'").is_err());
        assert!(parse("{'a': 1} x").is_err());
        assert!(parse("{'a': -1}").is_err());
        assert!(parse(&"(".repeat(100)).is_err());
    }
}
