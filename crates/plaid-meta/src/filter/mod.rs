//! The filter language: a condition with `?` placeholders over metadata
//! columns, validated before SQLite sees anything.
//!
//! # Grammar
//! ```text
//! condition := or
//! or        := and ( OR and )*
//! and       := not ( AND not )*
//! not       := NOT not | primary
//! primary   := '(' or ')' | operand rest
//! rest      := cmp operand
//!            | [NOT] LIKE operand
//!            | [NOT] IN '(' operand ( ',' operand )* ')'
//!            | [NOT] BETWEEN operand AND operand
//!            | IS [NOT] NULL
//! cmp       := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//! operand   := column | '?' | ['-'] number | 'string'
//! column    := bare-name | '"' quoted-name '"' | '`' quoted-name '`'
//! ```
//! Keywords are case-insensitive. A bare name must not be an SQL keyword
//! (quote it: `"order" = ?`) and must name an existing column
//! (compared ASCII-case-insensitively, as SQLite does).
//!
//! The parsed tree is turned back into SQL by [`Filter::compile`]: every
//! column is a quoted identifier and every value (placeholders and literals
//! alike) a bound parameter, so no text of the condition reaches SQLite.
//!
//! # Limits
//! [`MAX_CONDITION_BYTES`], [`MAX_IN_LIST`], [`MAX_DEPTH`] and
//! [`MAX_PARAMS`]; the number of parameters must equal the number of `?`.

mod lex;
mod parse;

#[cfg(test)]
mod tests;

use crate::Value;
pub use parse::CompiledFilter;
pub(crate) use parse::quote_ident as parse_quote_ident;

/// Longest condition accepted, in bytes.
pub const MAX_CONDITION_BYTES: usize = 4096;
/// Most items in one `IN (...)` list.
pub const MAX_IN_LIST: usize = 1000;
/// Deepest nesting of parentheses and `NOT`.
pub const MAX_DEPTH: usize = 32;
/// Most bound values (placeholders and literals) in one condition.
pub const MAX_PARAMS: usize = 2000;

/// A condition and the values of its `?` placeholders, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    condition: String,
    params: Vec<Value>,
}

impl Filter {
    /// A filter; nothing is checked until it is compiled against columns.
    pub fn new(condition: impl Into<String>, params: Vec<Value>) -> Self {
        Self {
            condition: condition.into(),
            params,
        }
    }

    /// The condition text.
    pub fn condition(&self) -> &str {
        &self.condition
    }

    /// The placeholder values.
    pub fn params(&self) -> &[Value] {
        &self.params
    }

    /// Validates the condition against the grammar and `columns` and emits
    /// the SQL `WHERE` body with its bound values.
    ///
    /// Never panics, whatever the condition.
    ///
    /// # Errors
    /// A [`FilterError`] with the byte offset of the first thing that is not
    /// allowed.
    pub fn compile(&self, columns: &[&str]) -> Result<CompiledFilter, FilterError> {
        parse::compile(&self.condition, &self.params, columns)
    }
}

/// Why a condition was refused, and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("filter refused at byte {offset}: {kind}")]
pub struct FilterError {
    /// Byte offset in the condition where the problem starts.
    pub offset: usize,
    /// What was wrong.
    pub kind: FilterErrorKind,
}

/// What was wrong with a condition.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Nothing but whitespace.
    #[error("the condition is empty")]
    Empty,
    /// Longer than [`MAX_CONDITION_BYTES`].
    #[error("the condition is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character that no token of the grammar starts with.
    #[error("unexpected character {found:?}")]
    UnexpectedChar {
        /// The character.
        found: char,
    },
    /// An SQL construct outside the filter grammar.
    #[error("{0} is not allowed in a filter")]
    Disallowed(Disallowed),
    /// A `'string` without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// A `"name` or `` `name `` without its closing quote.
    #[error("unterminated quoted column name")]
    UnterminatedIdentifier,
    /// A malformed or out-of-range number.
    #[error("{text:?} is not a valid number")]
    BadNumber {
        /// The text.
        text: String,
    },
    /// A column that the metadata does not have.
    #[error("unknown column {name:?}")]
    UnknownColumn {
        /// The name as written.
        name: String,
    },
    /// A token where the grammar expects something else.
    #[error("found {found}, expected {expected}")]
    Unexpected {
        /// The token found (or "the end").
        found: String,
        /// What the grammar allows here.
        expected: &'static str,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An `IN` list longer than [`MAX_IN_LIST`].
    #[error("IN list longer than {max} items")]
    InListTooLong {
        /// The limit.
        max: usize,
    },
    /// More bound values than [`MAX_PARAMS`].
    #[error("more than {max} values")]
    TooManyValues {
        /// The limit.
        max: usize,
    },
    /// The number of `?` differs from the number of parameters.
    #[error("the condition has {placeholders} placeholders but {params} parameters were given")]
    ParamCount {
        /// `?` in the condition.
        placeholders: usize,
        /// Parameters given.
        params: usize,
    },
    /// A parameter that cannot be bound (a non-finite float).
    #[error("parameter {index} is not a finite number")]
    BadParam {
        /// 0-based position among the parameters.
        index: usize,
    },
}

/// SQL constructs a filter refuses by name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Disallowed {
    /// `;`: statement separators.
    #[error("';'")]
    Semicolon,
    /// `--` or `/* */`.
    #[error("a comment")]
    Comment,
    /// `:name`, `@name`, `$name`.
    #[error("a named parameter (use ?)")]
    NamedParameter,
    /// `?NNN`.
    #[error("a numbered parameter (use ?)")]
    NumberedParameter,
    /// A bare SQL keyword outside the grammar (`SELECT`, `UNION`, `PRAGMA`,
    /// ...). Quote it if it is a column name.
    #[error("the keyword {word} (quote it if it is a column name)")]
    Keyword {
        /// The keyword, upper-cased.
        word: String,
    },
    /// `name(...)`.
    #[error("the function call {name}(...)")]
    FunctionCall {
        /// The function name.
        name: String,
    },
}
