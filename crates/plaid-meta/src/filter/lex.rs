//! The tokenizer: condition text to tokens with byte offsets.
//!
//! It knows only the tokens of the filter grammar. Statement separators,
//! comments, named or numbered parameters and every other character are
//! refused here, with the byte offset where they start.

use super::{Disallowed, FilterError, FilterErrorKind};

/// Reserved words of the grammar (matched case-insensitively).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Not,
    In,
    Is,
    Null,
    Like,
    Between,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A column name: bare, `"double quoted"` or `` `backquoted` ``.
    Column(String),
    Kw(Kw),
    Param,
    Int(i64),
    Real(f64),
    Str(String),
    Cmp(CmpOp),
    Minus,
    LParen,
    RParen,
    Comma,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Column(c) => format!("column {c:?}"),
            Self::Kw(k) => format!("{k:?}").to_uppercase(),
            Self::Param => "?".into(),
            Self::Int(i) => i.to_string(),
            Self::Real(r) => r.to_string(),
            Self::Str(_) => "a string literal".into(),
            Self::Cmp(op) => op.sql().into(),
            Self::Minus => "-".into(),
            Self::LParen => "(".into(),
            Self::RParen => ")".into(),
            Self::Comma => ",".into(),
        }
    }
}

/// SQL keywords (SQLite's list) that are not part of the filter grammar.
/// As bare words they are refused; quoted they are ordinary column names.
const SQL_KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOTHING",
    "NOTNULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
    "TRUE",
    "FALSE",
];

fn err(offset: usize, kind: FilterErrorKind) -> FilterError {
    FilterError { offset, kind }
}

/// Splits `src` into tokens, each with the byte offset where it starts.
pub(crate) fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let next = bytes.get(i + 1).copied();
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'?' => {
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    return Err(err(
                        start,
                        FilterErrorKind::Disallowed(Disallowed::NumberedParameter),
                    ));
                }
                i += 1;
                Tok::Param
            }
            b':' | b'@' | b'$' => {
                return Err(err(
                    start,
                    FilterErrorKind::Disallowed(Disallowed::NamedParameter),
                ));
            }
            b';' => {
                return Err(err(
                    start,
                    FilterErrorKind::Disallowed(Disallowed::Semicolon),
                ));
            }
            b'-' if next == Some(b'-') => {
                return Err(err(start, FilterErrorKind::Disallowed(Disallowed::Comment)));
            }
            b'/' if next == Some(b'*') => {
                return Err(err(start, FilterErrorKind::Disallowed(Disallowed::Comment)));
            }
            b'-' => {
                i += 1;
                Tok::Minus
            }
            b'=' => {
                i += if next == Some(b'=') { 2 } else { 1 };
                Tok::Cmp(CmpOp::Eq)
            }
            b'!' if next == Some(b'=') => {
                i += 2;
                Tok::Cmp(CmpOp::Ne)
            }
            b'<' => match next {
                Some(b'=') => {
                    i += 2;
                    Tok::Cmp(CmpOp::Le)
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Cmp(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Cmp(CmpOp::Lt)
                }
            },
            b'>' => {
                if next == Some(b'=') {
                    i += 2;
                    Tok::Cmp(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Cmp(CmpOp::Gt)
                }
            }
            b'\'' => {
                let (s, end) = quoted(src, start, b'\'', FilterErrorKind::UnterminatedString)?;
                i = end;
                Tok::Str(s)
            }
            b'"' | b'`' => {
                let (s, end) = quoted(src, start, c, FilterErrorKind::UnterminatedIdentifier)?;
                i = end;
                Tok::Column(s)
            }
            b'0'..=b'9' | b'.' => {
                let (t, end) = number(src, start)?;
                i = end;
                t
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let word = &src[start..end];
                i = end;
                word_token(word, start, &src[end..])?
            }
            _ => {
                let found = src[start..].chars().next().unwrap_or('\u{fffd}');
                return Err(err(start, FilterErrorKind::UnexpectedChar { found }));
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

/// A bare word: a keyword of the grammar, a refused SQL keyword or function
/// call, or a column name.
fn word_token(word: &str, start: usize, rest: &str) -> Result<Tok, FilterError> {
    let upper = word.to_ascii_uppercase();
    let kw = match upper.as_str() {
        "AND" => Some(Kw::And),
        "OR" => Some(Kw::Or),
        "NOT" => Some(Kw::Not),
        "IN" => Some(Kw::In),
        "IS" => Some(Kw::Is),
        "NULL" => Some(Kw::Null),
        "LIKE" => Some(Kw::Like),
        "BETWEEN" => Some(Kw::Between),
        _ => None,
    };
    if let Some(k) = kw {
        return Ok(Tok::Kw(k));
    }
    if SQL_KEYWORDS.contains(&upper.as_str()) {
        return Err(err(
            start,
            FilterErrorKind::Disallowed(Disallowed::Keyword { word: upper }),
        ));
    }
    if rest.trim_start().starts_with('(') {
        return Err(err(
            start,
            FilterErrorKind::Disallowed(Disallowed::FunctionCall {
                name: word.to_owned(),
            }),
        ));
    }
    Ok(Tok::Column(word.to_owned()))
}

/// A quoted run starting at `start` (the opening quote `q`); a doubled
/// quote stands for one. Returns the content and the offset after it.
fn quoted(
    src: &str,
    start: usize,
    q: u8,
    unterminated: FilterErrorKind,
) -> Result<(String, usize), FilterError> {
    let bytes = src.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    let mut seg = i;
    loop {
        match bytes.get(i) {
            None => return Err(err(start, unterminated)),
            Some(&b) if b == q => {
                out.push_str(&src[seg..i]);
                if bytes.get(i + 1) == Some(&q) {
                    out.push(q as char);
                    i += 2;
                    seg = i;
                } else {
                    return Ok((out, i + 1));
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// A decimal integer or float literal (`12`, `1.5`, `.5`, `1e3`).
fn number(src: &str, start: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = src.as_bytes();
    let mut end = start;
    let mut is_real = false;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if bytes.get(end) == Some(&b'.') {
        is_real = true;
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        is_real = true;
        end += 1;
        if matches!(bytes.get(end), Some(b'+' | b'-')) {
            end += 1;
        }
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    // A number runs straight into a letter (`12abc`, `0x1F`): not a number.
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
        is_real = true;
    }
    let text = &src[start..end];
    let bad = || {
        err(
            start,
            FilterErrorKind::BadNumber {
                text: text.to_owned(),
            },
        )
    };
    let tok = if is_real {
        let v: f64 = text.parse().map_err(|_| bad())?;
        if !v.is_finite() {
            return Err(bad());
        }
        Tok::Real(v)
    } else {
        Tok::Int(text.parse().map_err(|_| bad())?)
    };
    Ok((tok, end))
}
