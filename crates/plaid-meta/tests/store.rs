//! MetaStore through its public API: round trips, filters, deletes, repair.
#![allow(clippy::unwrap_used)]

use plaid_codec::types::DocId;
use plaid_meta::{ColumnKind, Error, Filter, FilterErrorKind, KeyProblem, MetaStore, Value};
use serde_json::{Value as Json, json};

fn ids(v: &[u32]) -> Vec<DocId> {
    v.iter().map(|&i| DocId::new(i)).collect()
}

/// 100 generated documents with a section, a size, a priority (null for
/// every 7th) and a nested value.
fn docs() -> Vec<Json> {
    (0..100u32)
        .map(|i| {
            let section = ["libs", "net", "games", "order"][i as usize % 4];
            let mut o = json!({
                "section": section,
                "installed_size": i * 10,
                "ratio": f64::from(i) / 4.0,
                "tags": ["a", i % 3],
                "order": i % 5,
            });
            if i % 7 != 0 {
                o["priority"] = json!(if i % 2 == 0 { "optional" } else { "required" });
            }
            o
        })
        .collect()
}

fn store() -> (tempfile::TempDir, MetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = MetaStore::open_or_create(dir.path().join("metadata.db")).unwrap();
    let all: Vec<u32> = (0..100).collect();
    s.add(&ids(&all), &docs(), 1).unwrap();
    (dir, s)
}

/// The ids a filter should select, computed in Rust from the same JSON.
fn oracle(pred: impl Fn(&Json) -> bool) -> Vec<DocId> {
    docs()
        .iter()
        .enumerate()
        .filter(|(_, d)| pred(d))
        .map(|(i, _)| DocId::new(i as u32))
        .collect()
}

#[test]
fn roundtrip_objects_and_inferred_columns() {
    let (_d, s) = store();
    let kinds: Vec<(String, ColumnKind)> = s
        .columns()
        .iter()
        .map(|c| (c.name.clone(), c.kind))
        .collect();
    // serde_json keeps keys sorted; columns appear in first-seen order.
    for (name, kind) in [
        ("installed_size", ColumnKind::Integer),
        ("ratio", ColumnKind::Real),
        ("section", ColumnKind::Text),
        ("tags", ColumnKind::Json),
        ("priority", ColumnKind::Text),
    ] {
        assert!(
            kinds.contains(&(name.to_owned(), kind)),
            "{name}: {kinds:?}"
        );
    }
    let got = s.get(&ids(&[3, 14, 500])).unwrap();
    let d = docs();
    assert_eq!(
        got[0].as_ref().map(|m| Json::Object(m.clone())),
        Some(d[3].clone())
    );
    assert_eq!(
        got[1].as_ref().map(|m| Json::Object(m.clone())),
        Some(d[14].clone())
    );
    assert_eq!(got[2], None);
    assert_eq!(s.generation().unwrap(), Some(1));
}

#[test]
fn filters_match_a_rust_oracle() {
    let (_d, s) = store();
    let size = |d: &Json| d["installed_size"].as_i64().unwrap();
    let sec = |d: &Json| d["section"].as_str().unwrap().to_owned();
    let check = |cond: &str, params: Vec<Value>, want: Vec<DocId>| {
        let f = Filter::new(cond, params);
        assert_eq!(s.ids(&f).unwrap(), want, "{cond}");
        assert_eq!(s.count(&f).unwrap(), want.len(), "{cond}");
    };
    check(
        "section = ? AND installed_size < ?",
        vec!["libs".into(), 500.into()],
        oracle(|d| sec(d) == "libs" && size(d) < 500),
    );
    check(
        "installed_size BETWEEN ? AND ? OR section IN ('net', ?)",
        vec![100.into(), 200.into(), "games".into()],
        oracle(|d| (100..=200).contains(&size(d)) || ["net", "games"].contains(&sec(d).as_str())),
    );
    check(
        "priority IS NULL",
        vec![],
        oracle(|d| d.get("priority").is_none()),
    );
    check(
        "NOT (priority IS NOT NULL) AND section LIKE 'l%'",
        vec![],
        oracle(|d| d.get("priority").is_none() && sec(d).starts_with('l')),
    );
    check(
        "ratio >= 12.5",
        vec![],
        oracle(|d| d["ratio"].as_f64().unwrap() >= 12.5),
    );
    // A column named like a keyword, quoted; and a value equal to it.
    check(
        "\"order\" = ? AND section = 'order'",
        vec![2.into()],
        oracle(|d| d["order"] == 2 && sec(d) == "order"),
    );
    check(
        "section NOT IN (?, ?)",
        vec!["libs".into(), "net".into()],
        oracle(|d| !["libs", "net"].contains(&sec(d).as_str())),
    );
}

#[test]
fn rejects_unknown_columns_and_param_mismatch_as_filter_errors() {
    let (_d, s) = store();
    let e = s
        .ids(&Filter::new("package = ?", vec!["x".into()]))
        .unwrap_err();
    assert!(
        matches!(e, Error::Filter(ref f) if f.kind == FilterErrorKind::UnknownColumn { name: "package".into() }),
        "{e}"
    );
    let e = s
        .count(&Filter::new(
            "section = ? AND installed_size < ?",
            vec!["x".into()],
        ))
        .unwrap_err();
    assert!(
        matches!(e, Error::Filter(ref f) if matches!(f.kind, FilterErrorKind::ParamCount { placeholders: 2, params: 1 })),
        "{e}"
    );
    // The table is intact after every refused attempt.
    assert_eq!(s.all_ids().unwrap().len(), 100);
}

#[test]
fn rejects_bad_entries_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = MetaStore::open_or_create(dir.path().join("m.db")).unwrap();
    type Check = Box<dyn Fn(&Error) -> bool>;
    let cases: Vec<(Vec<Json>, Check)> = vec![
        (
            vec![json!({"a": 1}), json!([1])],
            Box::new(|e| matches!(e, Error::NotAnObject { index: 1 })),
        ),
        (
            vec![json!({"a": 1}), json!({"": 1})],
            Box::new(|e| {
                matches!(
                    e,
                    Error::BadKey {
                        index: 1,
                        problem: KeyProblem::Empty,
                        ..
                    }
                )
            }),
        ),
        (
            vec![json!({"_plaid_id": 1}), json!({})],
            Box::new(|e| {
                matches!(
                    e,
                    Error::BadKey {
                        index: 0,
                        problem: KeyProblem::Reserved,
                        ..
                    }
                )
            }),
        ),
        (
            vec![json!({"a": 1, "A": 2}), json!({})],
            Box::new(|e| {
                matches!(
                    e,
                    Error::BadKey {
                        index: 0,
                        problem: KeyProblem::CaseDuplicate,
                        ..
                    }
                )
            }),
        ),
        (
            vec![json!({"a\u{0}b": 1}), json!({})],
            Box::new(|e| {
                matches!(
                    e,
                    Error::BadKey {
                        problem: KeyProblem::Nul,
                        ..
                    }
                )
            }),
        ),
        (
            vec![json!({})],
            Box::new(|e| matches!(e, Error::CountMismatch { ids: 2, objects: 1 })),
        ),
    ];
    for (objs, ok) in cases {
        let e = s.add(&ids(&[0, 1]), &objs, 1).unwrap_err();
        assert!(ok(&e), "{e}");
    }
    assert!(s.all_ids().unwrap().is_empty());
    assert!(s.columns().is_empty());
    assert_eq!(s.generation().unwrap(), None);
}

#[test]
fn delete_removes_rows_with_their_documents() {
    let (d, mut s) = store();
    assert_eq!(s.delete(&ids(&[1, 2, 3, 999]), 2).unwrap(), 3);
    assert_eq!(
        s.get(&ids(&[1, 4]))
            .unwrap()
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>(),
        [false, true]
    );
    let f = Filter::new("installed_size < ?", vec![50.into()]);
    assert_eq!(s.ids(&f).unwrap(), ids(&[0, 4]));
    assert_eq!(s.generation().unwrap(), Some(2));
    // Persisted: a fresh connection sees the same.
    drop(s);
    let s = MetaStore::open(d.path().join("metadata.db")).unwrap();
    assert_eq!(s.ids(&f).unwrap(), ids(&[0, 4]));
    assert_eq!(s.columns().len(), 6);
}

#[test]
fn repair_after_a_generation_bump_keeps_exactly_the_live_rows() {
    let (_d, mut s) = store();
    // Simulate: the manifest moved to generation 3, where documents 10..20
    // were deleted, and a crash happened before the metadata followed.
    let live: Vec<DocId> = (0..100)
        .filter(|i| !(10..20).contains(i))
        .map(DocId::new)
        .collect();
    assert_eq!(s.generation().unwrap(), Some(1));
    let report = s.repair(&live, 3).unwrap();
    assert_eq!(report.from_generation, Some(1));
    assert_eq!(report.to_generation, 3);
    assert_eq!(report.removed, (10..20).map(DocId::new).collect::<Vec<_>>());
    assert_eq!(s.all_ids().unwrap(), live);
    assert_eq!(s.generation().unwrap(), Some(3));
    // Idempotent.
    let again = s.repair(&live, 3).unwrap();
    assert!(again.removed.is_empty());
}

#[test]
fn later_documents_add_columns_and_replace_rows() {
    let (_d, mut s) = store();
    s.add(
        &ids(&[5, 200]),
        &[
            json!({"section": "x"}),
            json!({"lang": "fr", "section": "y"}),
        ],
        2,
    )
    .unwrap();
    let got = s.get(&ids(&[5, 200])).unwrap();
    assert_eq!(
        Json::Object(got[0].clone().unwrap()),
        json!({"section": "x"})
    );
    assert_eq!(
        Json::Object(got[1].clone().unwrap()),
        json!({"lang": "fr", "section": "y"})
    );
    let f = Filter::new("lang = ?", vec!["fr".into()]);
    assert_eq!(s.ids(&f).unwrap(), ids(&[200]));
}

#[test]
fn open_refuses_missing_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("metadata.db");
    assert!(matches!(MetaStore::open(&p), Err(Error::Missing { .. })));
    std::fs::write(&p, b"not sqlite at all, not sqlite at all, not sqlite at all, not sqlite at all, not sqlite at all").unwrap();
    assert!(MetaStore::open(&p).is_err());
}

/// A copy of the database and its journal taken in the middle of a write
/// transaction whose changes spilled into the database file: what a writer
/// killed at that moment leaves (a hot journal, and no lock holding it).
fn crash_image(dir: &std::path::Path) -> std::path::PathBuf {
    let live = dir.join("live");
    std::fs::create_dir(&live).unwrap();
    let db = live.join("metadata.db");
    let mut s = MetaStore::open_or_create(&db).unwrap();
    let all: Vec<u32> = (0..100).collect();
    s.add(&ids(&all), &docs(), 1).unwrap();
    drop(s);
    let conn = rusqlite::Connection::open(&db).unwrap();
    // A tiny page cache makes SQLite write changed pages into the database
    // file before the commit (after syncing their originals to the journal).
    conn.execute_batch(
        "PRAGMA cache_size = 1;
         BEGIN;
         UPDATE plaid_meta_docs SET section = hex(zeroblob(20000));
         DELETE FROM plaid_meta_docs WHERE \"_plaid_id\" < 50;
         UPDATE plaid_meta_info SET value = 99 WHERE key = 'generation';",
    )
    .unwrap();
    let journal = live.join("metadata.db-journal");
    assert!(journal.is_file(), "no journal during the transaction");
    let image = dir.join("image");
    std::fs::create_dir(&image).unwrap();
    std::fs::copy(&db, image.join("metadata.db")).unwrap();
    std::fs::copy(&journal, image.join("metadata.db-journal")).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    image.join("metadata.db")
}

#[test]
fn read_only_open_recovers_an_interrupted_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = crash_image(dir.path());
    // Reading the damaged file as it is would be wrong; SQLite refuses it.
    let raw =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let e = raw
        .query_row("SELECT count(*) FROM plaid_meta_docs", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(
        e.sqlite_error().map(|f| f.extended_code),
        Some(rusqlite::ffi::SQLITE_READONLY_ROLLBACK),
        "{e}"
    );
    drop(raw);
    // The store rolls the journal back and sees the last committed state.
    let s = MetaStore::open_read_only(&db).unwrap();
    let (generation, rows) = s.read(|s| Ok((s.generation()?, s.all_ids()?))).unwrap();
    assert_eq!(generation, Some(1));
    assert_eq!(rows, (0..100).map(DocId::new).collect::<Vec<_>>());
    let got = s.get(&ids(&[70])).unwrap();
    assert_eq!(Json::Object(got[0].clone().unwrap()), docs()[70]);
    assert!(!db.with_file_name("metadata.db-journal").exists());
}
