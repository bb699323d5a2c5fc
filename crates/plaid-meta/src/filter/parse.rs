//! Recursive descent over the tokens, then SQL from the tree.

use super::lex::{CmpOp, Kw, Tok, tokenize};
use super::{
    FilterError, FilterErrorKind, MAX_CONDITION_BYTES, MAX_DEPTH, MAX_IN_LIST, MAX_PARAMS,
};
use crate::Value;

/// A validated condition as SQL: a `WHERE` body whose columns are quoted
/// identifiers and whose values are all `?`, and the values to bind.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledFilter {
    /// The SQL expression.
    pub sql: String,
    /// Values for its `?`, in order.
    pub binds: Vec<Value>,
}

#[derive(Debug)]
enum Operand {
    /// Canonical column name.
    Column(String),
    /// Index into the bound values.
    Value(usize),
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, CmpOp, Operand),
    Like(Operand, Operand, bool),
    In(Operand, Vec<Operand>, bool),
    Between(Operand, Operand, Operand, bool),
    IsNull(Operand, bool),
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    columns: &'a [&'a str],
    params: &'a [Value],
    next_param: usize,
    binds: Vec<Value>,
}

fn err(offset: usize, kind: FilterErrorKind) -> FilterError {
    FilterError { offset, kind }
}

pub(super) fn compile(
    src: &str,
    params: &[Value],
    columns: &[&str],
) -> Result<CompiledFilter, FilterError> {
    if src.len() > MAX_CONDITION_BYTES {
        return Err(err(
            MAX_CONDITION_BYTES,
            FilterErrorKind::TooLong {
                len: src.len(),
                max: MAX_CONDITION_BYTES,
            },
        ));
    }
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return Err(err(0, FilterErrorKind::Empty));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        columns,
        params,
        next_param: 0,
        binds: Vec::new(),
    };
    let expr = p.or(0)?;
    if let Some((off, t)) = p.toks.get(p.pos) {
        return Err(err(
            *off,
            FilterErrorKind::Unexpected {
                found: t.describe(),
                expected: "AND, OR or the end",
            },
        ));
    }
    if p.next_param != params.len() {
        return Err(err(
            p.end,
            FilterErrorKind::ParamCount {
                placeholders: p.next_param,
                params: params.len(),
            },
        ));
    }
    let mut sql = String::new();
    let mut order = Vec::with_capacity(p.binds.len());
    emit(&expr, &mut sql, &mut order);
    // Bind in the order the `?` appear in the emitted SQL.
    let binds = order.iter().map(|&i| p.binds[i].clone()).collect();
    Ok(CompiledFilter { sql, binds })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn eat_kw(&mut self, kw: Kw) -> bool {
        if self.peek() == Some(&Tok::Kw(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &'static str) -> FilterError {
        let found = self
            .peek()
            .map_or_else(|| "the end".to_owned(), Tok::describe);
        err(
            self.offset(),
            FilterErrorKind::Unexpected { found, expected },
        )
    }

    fn expect(&mut self, tok: &Tok, expected: &'static str) -> Result<(), FilterError> {
        if self.peek() == Some(tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut lhs = self.and(depth)?;
        while self.eat_kw(Kw::Or) {
            let rhs = self.and(depth)?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut lhs = self.not(depth)?;
        while self.eat_kw(Kw::And) {
            let rhs = self.not(depth)?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn deeper(&self, depth: usize) -> Result<usize, FilterError> {
        if depth >= MAX_DEPTH {
            return Err(err(
                self.offset(),
                FilterErrorKind::TooDeep { max: MAX_DEPTH },
            ));
        }
        Ok(depth + 1)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, FilterError> {
        if self.peek() == Some(&Tok::Kw(Kw::Not)) {
            let d = self.deeper(depth)?;
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not(d)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        if self.peek() == Some(&Tok::LParen) {
            let d = self.deeper(depth)?;
            self.pos += 1;
            let e = self.or(d)?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(e);
        }
        let lhs = self.operand()?;
        let negated = self.eat_kw(Kw::Not);
        match self.peek().cloned() {
            Some(Tok::Cmp(op)) if !negated => {
                self.pos += 1;
                Ok(Expr::Cmp(lhs, op, self.operand()?))
            }
            Some(Tok::Kw(Kw::Like)) => {
                self.pos += 1;
                Ok(Expr::Like(lhs, self.operand()?, negated))
            }
            Some(Tok::Kw(Kw::In)) => {
                self.pos += 1;
                self.expect(&Tok::LParen, "'(' after IN")?;
                let mut list = vec![self.operand()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    if list.len() >= MAX_IN_LIST {
                        return Err(err(
                            self.offset(),
                            FilterErrorKind::InListTooLong { max: MAX_IN_LIST },
                        ));
                    }
                    list.push(self.operand()?);
                }
                self.expect(&Tok::RParen, "',' or ')' in the IN list")?;
                Ok(Expr::In(lhs, list, negated))
            }
            Some(Tok::Kw(Kw::Between)) => {
                self.pos += 1;
                let lo = self.operand()?;
                if !self.eat_kw(Kw::And) {
                    return Err(self.unexpected("AND in BETWEEN"));
                }
                let hi = self.operand()?;
                Ok(Expr::Between(lhs, lo, hi, negated))
            }
            Some(Tok::Kw(Kw::Is)) if !negated => {
                self.pos += 1;
                let not_null = self.eat_kw(Kw::Not);
                if !self.eat_kw(Kw::Null) {
                    return Err(self.unexpected("NULL after IS [NOT]"));
                }
                Ok(Expr::IsNull(lhs, not_null))
            }
            _ if negated => Err(self.unexpected("LIKE, IN or BETWEEN after NOT")),
            _ => Err(self.unexpected("a comparison, LIKE, IN, BETWEEN or IS")),
        }
    }

    fn bind(&mut self, v: Value, offset: usize) -> Result<Operand, FilterError> {
        if self.binds.len() >= MAX_PARAMS {
            return Err(err(
                offset,
                FilterErrorKind::TooManyValues { max: MAX_PARAMS },
            ));
        }
        self.binds.push(v);
        Ok(Operand::Value(self.binds.len() - 1))
    }

    fn operand(&mut self) -> Result<Operand, FilterError> {
        let offset = self.offset();
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected("a column, ? or a literal"));
        };
        self.pos += 1;
        match tok {
            Tok::Column(name) => self
                .columns
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&name))
                .map(|c| Operand::Column((*c).to_owned()))
                .ok_or_else(|| err(offset, FilterErrorKind::UnknownColumn { name })),
            Tok::Param => {
                let index = self.next_param;
                self.next_param += 1;
                let v = match self.params.get(index) {
                    Some(Value::Real(f)) if !f.is_finite() => {
                        return Err(err(offset, FilterErrorKind::BadParam { index }));
                    }
                    Some(v) => v.clone(),
                    // Counted and reported as ParamCount at the end.
                    None => Value::Null,
                };
                self.bind(v, offset)
            }
            Tok::Int(i) => self.bind(Value::Integer(i), offset),
            Tok::Real(r) => self.bind(Value::Real(r), offset),
            Tok::Str(s) => self.bind(Value::Text(s), offset),
            Tok::Minus => match self.peek().cloned() {
                Some(Tok::Int(i)) => {
                    self.pos += 1;
                    self.bind(Value::Integer(-i), offset)
                }
                Some(Tok::Real(r)) => {
                    self.pos += 1;
                    self.bind(Value::Real(-r), offset)
                }
                _ => Err(self.unexpected("a number after '-'")),
            },
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a column, ? or a literal"))
            }
        }
    }
}

/// Appends `"name"` with inner quotes doubled.
pub(crate) fn quote_ident(name: &str, out: &mut String) {
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

fn emit_operand(o: &Operand, out: &mut String, order: &mut Vec<usize>) {
    match o {
        Operand::Column(c) => quote_ident(c, out),
        Operand::Value(i) => {
            out.push('?');
            order.push(*i);
        }
    }
}

/// SQL for the tree; every sub-expression is parenthesised, so precedence
/// is the parser's, not SQLite's.
fn emit(e: &Expr, out: &mut String, order: &mut Vec<usize>) {
    out.push('(');
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            emit(a, out, order);
            out.push_str(if matches!(e, Expr::And(..)) {
                " AND "
            } else {
                " OR "
            });
            emit(b, out, order);
        }
        Expr::Not(a) => {
            out.push_str("NOT ");
            emit(a, out, order);
        }
        Expr::Cmp(a, op, b) => {
            emit_operand(a, out, order);
            out.push(' ');
            out.push_str(op.sql());
            out.push(' ');
            emit_operand(b, out, order);
        }
        Expr::Like(a, b, neg) => {
            emit_operand(a, out, order);
            out.push_str(if *neg { " NOT LIKE " } else { " LIKE " });
            emit_operand(b, out, order);
        }
        Expr::In(a, list, neg) => {
            emit_operand(a, out, order);
            out.push_str(if *neg { " NOT IN (" } else { " IN (" });
            for (i, o) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit_operand(o, out, order);
            }
            out.push(')');
        }
        Expr::Between(a, lo, hi, neg) => {
            emit_operand(a, out, order);
            out.push_str(if *neg { " NOT BETWEEN " } else { " BETWEEN " });
            emit_operand(lo, out, order);
            out.push_str(" AND ");
            emit_operand(hi, out, order);
        }
        Expr::IsNull(a, not_null) => {
            emit_operand(a, out, order);
            out.push_str(if *not_null {
                " IS NOT NULL"
            } else {
                " IS NULL"
            });
        }
    }
    out.push(')');
}
