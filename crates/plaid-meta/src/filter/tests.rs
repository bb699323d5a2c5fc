#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

const COLS: &[&str] = &[
    "section",
    "priority",
    "installed_size",
    "order",
    "select",
    "we\"ird",
];

fn compile(cond: &str, params: Vec<Value>) -> Result<CompiledFilter, FilterError> {
    Filter::new(cond, params).compile(COLS)
}

fn p(n: usize) -> Vec<Value> {
    (0..n).map(|i| Value::Integer(i as i64)).collect()
}

#[test]
fn accepts_the_grammar_and_emits_quoted_bound_sql() {
    // (condition, number of params, expected SQL)
    let cases: &[(&str, usize, &str)] = &[
        ("section = ?", 1, r#"("section" = ?)"#),
        (
            "section == ? and installed_size < ?",
            2,
            r#"(("section" = ?) AND ("installed_size" < ?))"#,
        ),
        ("installed_size != 3", 0, r#"("installed_size" <> ?)"#),
        ("installed_size <> -3.5", 0, r#"("installed_size" <> ?)"#),
        (
            "installed_size >= ? OR installed_size <= ?",
            2,
            r#"(("installed_size" >= ?) OR ("installed_size" <= ?))"#,
        ),
        ("package_like > 1", 0, ""),
        ("section LIKE 'lib%'", 0, r#"("section" LIKE ?)"#),
        ("section NOT LIKE ?", 1, r#"("section" NOT LIKE ?)"#),
        ("section IN (?, ?, 'x')", 2, r#"("section" IN (?, ?, ?))"#),
        ("section not in (1)", 0, r#"("section" NOT IN (?))"#),
        (
            "installed_size BETWEEN ? AND ?",
            2,
            r#"("installed_size" BETWEEN ? AND ?)"#,
        ),
        (
            "installed_size NOT BETWEEN 1 AND 2",
            0,
            r#"("installed_size" NOT BETWEEN ? AND ?)"#,
        ),
        ("priority IS NULL", 0, r#"("priority" IS NULL)"#),
        ("priority is not null", 0, r#"("priority" IS NOT NULL)"#),
        (
            "NOT (section = ? OR NOT priority = ?)",
            2,
            r#"(NOT (("section" = ?) OR (NOT ("priority" = ?))))"#,
        ),
        (
            r#""order" = ? AND `select` = ?"#,
            2,
            r#"(("order" = ?) AND ("select" = ?))"#,
        ),
        (r#""we""ird" = 1"#, 0, r#"("we""ird" = ?)"#),
        ("SECTION = ?", 1, r#"("section" = ?)"#),
        ("'a' = 'a'", 0, "(? = ?)"),
    ];
    for &(cond, n, sql) in cases {
        let got = compile(cond, p(n));
        if cond.starts_with("package_like") {
            assert!(got.is_err(), "{cond}");
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{cond}: {e}"));
        assert_eq!(got.sql, sql, "{cond}");
    }
}

#[test]
fn binds_literals_and_params_in_order() {
    let got = compile(
        "section = ? AND installed_size IN (5, ?, -2.5, 'x')",
        vec![Value::from("libs"), Value::from(7)],
    )
    .unwrap();
    assert_eq!(
        got.binds,
        vec![
            Value::from("libs"),
            Value::Integer(5),
            Value::Integer(7),
            Value::Real(-2.5),
            Value::from("x"),
        ]
    );
}

fn kind_of(cond: &str, n: usize) -> (usize, FilterErrorKind) {
    match compile(cond, p(n)) {
        Ok(c) => panic!("{cond:?} was accepted as {}", c.sql),
        Err(e) => (e.offset, e.kind),
    }
}

fn kw(word: &str) -> FilterErrorKind {
    FilterErrorKind::Disallowed(Disallowed::Keyword { word: word.into() })
}

fn dis(d: Disallowed) -> FilterErrorKind {
    FilterErrorKind::Disallowed(d)
}

fn unexpected(found: &str, expected: &'static str) -> FilterErrorKind {
    FilterErrorKind::Unexpected {
        found: found.into(),
        expected,
    }
}

#[test]
fn rejects_injection_and_abuse_with_typed_errors() {
    let deep_parens = format!("{}section = ?{}", "(".repeat(40), ")".repeat(40));
    let deep_not = format!("{}section = ?", "NOT ".repeat(40));
    let huge_in = format!("section IN ({})", vec!["1"; MAX_IN_LIST + 1].join(","));
    let too_long = format!("section = 'x{}'", "y".repeat(MAX_CONDITION_BYTES));
    let cases: Vec<(&str, usize, usize, FilterErrorKind)> = vec![
        (
            "section = ?; DROP TABLE docs",
            1,
            11,
            dis(Disallowed::Semicolon),
        ),
        ("section = ? -- comment", 1, 12, dis(Disallowed::Comment)),
        ("section = ? /* c */", 1, 12, dis(Disallowed::Comment)),
        ("section IN (SELECT section FROM x)", 0, 12, kw("SELECT")),
        ("section = ? UNION SELECT 1", 1, 12, kw("UNION")),
        ("PRAGMA table_info(docs)", 0, 0, kw("PRAGMA")),
        ("ATTACH 'x' AS y", 0, 0, kw("ATTACH")),
        (
            "lower(section) = ?",
            1,
            0,
            dis(Disallowed::FunctionCall {
                name: "lower".into(),
            }),
        ),
        (
            "section = load_extension ('x')",
            0,
            10,
            dis(Disallowed::FunctionCall {
                name: "load_extension".into(),
            }),
        ),
        ("section = :name", 0, 10, dis(Disallowed::NamedParameter)),
        ("section = @name", 0, 10, dis(Disallowed::NamedParameter)),
        ("section = ?1", 0, 10, dis(Disallowed::NumberedParameter)),
        ("section = ? OR 1 = 1 ORDER BY 1", 1, 21, kw("ORDER")),
        ("section REGEXP ?", 1, 8, kw("REGEXP")),
        ("section GLOB ?", 1, 8, kw("GLOB")),
        ("section = CAST(1 AS TEXT)", 0, 10, kw("CAST")),
        ("section = ? COLLATE NOCASE", 1, 12, kw("COLLATE")),
        ("EXISTS (SELECT 1)", 0, 0, kw("EXISTS")),
        (
            "section || 'x' = ?",
            1,
            8,
            FilterErrorKind::UnexpectedChar { found: '|' },
        ),
        (
            "section = 0x10",
            0,
            10,
            FilterErrorKind::BadNumber {
                text: "0x10".into(),
            },
        ),
        (
            "section = 'open",
            0,
            10,
            FilterErrorKind::UnterminatedString,
        ),
        (
            "\"section = 1",
            0,
            0,
            FilterErrorKind::UnterminatedIdentifier,
        ),
        (
            "nosuch = ?",
            1,
            0,
            FilterErrorKind::UnknownColumn {
                name: "nosuch".into(),
            },
        ),
        (
            "\"nosuch\" = ?",
            1,
            0,
            FilterErrorKind::UnknownColumn {
                name: "nosuch".into(),
            },
        ),
        (
            "section = ?",
            0,
            11,
            FilterErrorKind::ParamCount {
                placeholders: 1,
                params: 0,
            },
        ),
        (
            "section = ?",
            2,
            11,
            FilterErrorKind::ParamCount {
                placeholders: 1,
                params: 2,
            },
        ),
        ("", 0, 0, FilterErrorKind::Empty),
        ("   ", 0, 0, FilterErrorKind::Empty),
        (
            &deep_parens,
            1,
            32,
            FilterErrorKind::TooDeep { max: MAX_DEPTH },
        ),
        (
            &deep_not,
            1,
            128,
            FilterErrorKind::TooDeep { max: MAX_DEPTH },
        ),
        (
            &huge_in,
            0,
            12 + 2 * MAX_IN_LIST,
            FilterErrorKind::InListTooLong { max: MAX_IN_LIST },
        ),
        (
            &too_long,
            0,
            MAX_CONDITION_BYTES,
            FilterErrorKind::TooLong {
                len: too_long.len(),
                max: MAX_CONDITION_BYTES,
            },
        ),
        (
            "section",
            0,
            7,
            unexpected("the end", "a comparison, LIKE, IN, BETWEEN or IS"),
        ),
        (
            "section = ? section = ?",
            2,
            12,
            unexpected("column \"section\"", "AND, OR or the end"),
        ),
        ("(section = ?", 1, 12, unexpected("the end", "')'")),
        (
            "section IN ()",
            0,
            12,
            unexpected(")", "a column, ? or a literal"),
        ),
        (
            "section BETWEEN 1 OR 2",
            0,
            18,
            unexpected("OR", "AND in BETWEEN"),
        ),
        (
            "section IS 1",
            0,
            11,
            unexpected("1", "NULL after IS [NOT]"),
        ),
        (
            "section NOT = 1",
            0,
            12,
            unexpected("=", "LIKE, IN or BETWEEN after NOT"),
        ),
        (
            "section = -'x'",
            0,
            11,
            unexpected("a string literal", "a number after '-'"),
        ),
        (
            "section = ? AND",
            1,
            15,
            unexpected("the end", "a column, ? or a literal"),
        ),
        (
            "section = é",
            0,
            10,
            FilterErrorKind::UnexpectedChar { found: 'é' },
        ),
    ];
    for (cond, n, offset, kind) in cases {
        let short: String = cond.chars().take(60).collect();
        assert_eq!(kind_of(cond, n), (offset, kind), "{short}");
    }
}

#[test]
fn rejects_non_finite_params() {
    let e = compile(
        "section = ? OR section = ?",
        vec![Value::Integer(1), Value::Real(f64::NAN)],
    )
    .unwrap_err();
    assert_eq!(
        (e.offset, e.kind),
        (25, FilterErrorKind::BadParam { index: 1 })
    );
}

#[test]
fn limits_are_inclusive() {
    let ok_in = format!("section IN ({})", vec!["1"; MAX_IN_LIST].join(","));
    assert!(compile(&ok_in, vec![]).is_ok());
    let ok_deep = format!(
        "{}section = ?{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(compile(&ok_deep, p(1)).is_ok());
}

const SOUP: &[&str] = &[
    "section",
    "\"order\"",
    "`select`",
    "nosuch",
    "?",
    "?1",
    ":x",
    "1",
    "-",
    "2.5",
    "'s'",
    "'",
    "\"",
    "(",
    ")",
    ",",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "BETWEEN",
    "SELECT",
    "UNION",
    ";",
    "--",
    "/*",
    "*/",
    "lower(",
    "é",
    " ",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_random_strings(s in ".{0,200}", n in 0usize..4) {
        let _ = compile(&s, p(n));
    }

    #[test]
    fn never_panics_on_token_soup(toks in prop::collection::vec(prop::sample::select(SOUP), 0..40), n in 0usize..6) {
        let cond = toks.join(" ");
        match compile(&cond, p(n)) {
            // Whatever is accepted is well-formed: every value is bound.
            Ok(c) => prop_assert_eq!(c.sql.matches('?').count(), c.binds.len()),
            Err(e) => prop_assert!(e.offset <= cond.len()),
        }
    }
}
