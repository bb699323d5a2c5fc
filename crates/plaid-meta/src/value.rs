//! Scalar values: what a filter parameter or a stored metadata cell can be.

/// A scalar bound to a filter placeholder (`?`).
///
/// Nested JSON (arrays, objects) cannot be a parameter: filters compare
/// scalars. Booleans are integers (`true` = 1), as SQLite stores them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL` (compares as unknown: use `IS NULL` to test for it).
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A finite float.
    Real(f64),
    /// A UTF-8 string.
    Text(String),
}

impl Value {
    /// The scalar a JSON value stands for, or `None` for arrays and objects.
    /// Integers beyond `i64` become reals.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        match v {
            J::Null => Some(Self::Null),
            J::Bool(b) => Some(Self::Integer(i64::from(*b))),
            J::Number(n) => Some(match n.as_i64() {
                Some(i) => Self::Integer(i),
                None => Self::Real(n.as_f64().unwrap_or(f64::NAN)),
            }),
            J::String(s) => Some(Self::Text(s.clone())),
            J::Array(_) | J::Object(_) => None,
        }
    }

    /// Parses a command-line parameter: a JSON scalar when it is one
    /// (`500`, `2.5`, `"libs"`, `true`, `null`), else the text itself.
    pub fn parse_param(s: &str) -> Self {
        match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) => Self::from_json(&v).unwrap_or_else(|| Self::Text(s.to_owned())),
            Err(_) => Self::Text(s.to_owned()),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Integer(i64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Self::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Self::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Self::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Self::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_as_json_scalars_else_text() {
        assert_eq!(Value::parse_param("500"), Value::Integer(500));
        assert_eq!(Value::parse_param("2.5"), Value::Real(2.5));
        assert_eq!(Value::parse_param("libs"), Value::Text("libs".into()));
        assert_eq!(Value::parse_param("\"500\""), Value::Text("500".into()));
        assert_eq!(Value::parse_param("true"), Value::Integer(1));
        assert_eq!(Value::parse_param("null"), Value::Null);
        assert_eq!(Value::parse_param("[1]"), Value::Text("[1]".into()));
    }
}
