//! The `plaid` binary end to end: flags, npy inputs and outputs, the JSON
//! summaries scripts rely on, and one clean `error:` line for every bad input.
//!
//! The binary exists only with the `cli` feature.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

use plaid::storage::npy::{self, DType, Element, NpyArray};
use plaid::synth;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

const DIM: usize = 16;

/// Runs `plaid` with `args`, with backtraces turned on so that one would show.
fn plaid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plaid"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed quietly; returns its last stdout line as JSON.
fn ok_json(args: &[&str]) -> Value {
    let out = plaid(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "plaid {args:?} failed: {stderr}\n{stdout}"
    );
    assert_eq!(stderr, "", "plaid {args:?} wrote to stderr");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"))
}

/// Runs a command that must fail with exactly one `error:` line on stderr,
/// nothing on stdout and no panic or backtrace; returns the line.
fn error_line(args: &[&str]) -> String {
    let out = plaid(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "plaid {args:?} succeeded: {stdout}");
    assert_ne!(out.status.code(), None, "plaid {args:?} was killed");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "plaid {args:?} stderr: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    assert_eq!(stdout, "", "plaid {args:?} stdout");
    lines[0].to_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn assert_has_keys(v: &Value, expected: &[&str]) {
    for key in expected {
        assert!(v.get(key).is_some(), "no {key:?} in {v}");
    }
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key:?} is not an integer in {v}"))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write<T: Element>(path: &Path, shape: &[usize], data: &[T]) {
    std::fs::write(path, npy::npy_bytes(shape, data).unwrap()).unwrap();
}

/// `x` as IEEE half-precision bits, rounded toward zero; magnitudes below the
/// smallest normal half become zero (plenty for unit-vector components).
fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let mant = ((b & 0x7f_ffff) >> 13) as u16;
    match exp {
        ..=0 => sign,
        31.. => sign | 0x7c00,
        e => sign | ((e as u16) << 10) | mant,
    }
}

fn write_f16(path: &Path, shape: &[usize], data: &[f32]) {
    let mut bytes = npy::encode_header(DType::F16, shape).unwrap();
    for &x in data {
        bytes.extend_from_slice(&f16_bits(x).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// An npy file whose header is written by hand, padded to 64 bytes.
fn write_raw_npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let header_len = (10 + dict.len() + 1).next_multiple_of(64) - 10;
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header_len).unwrap().to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(10 + header_len - 1, b' ');
    bytes.push(b'\n');
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

fn read(path: &Path) -> NpyArray {
    npy::read_npy(path).unwrap()
}

/// A corpus written as npy files in a temporary directory.
struct Inputs {
    tmp: TempDir,
    corpus: synth::SynthCorpus,
}

impl Inputs {
    fn new(num_docs: usize) -> Self {
        let corpus = synth::corpus(&synth::SynthConfig::new(num_docs).dim(DIM).lens(3, 9));
        let tmp = tempfile::tempdir().unwrap();
        let this = Self { tmp, corpus };
        let c = &this.corpus;
        write(
            &this.path("emb.npy"),
            &[this.num_tokens(), DIM],
            &c.embeddings,
        );
        let l32: Vec<i32> = c.doclens.iter().map(|&l| l as i32).collect();
        let l64: Vec<i64> = c.doclens.iter().map(|&l| l as i64).collect();
        write(&this.path("lens32.npy"), &[l32.len()], &l32);
        write(&this.path("lens64.npy"), &[l64.len()], &l64);
        this
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn num_tokens(&self) -> usize {
        self.corpus.doclens.iter().sum()
    }

    /// Row range of document `d`.
    fn rows(&self, d: usize) -> std::ops::Range<usize> {
        let start: usize = self.corpus.doclens[..d].iter().sum();
        start..start + self.corpus.doclens[d]
    }

    /// Builds an index at `name` with extra flags; returns its directory and summary.
    fn index(&self, name: &str, extra: &[&str]) -> (PathBuf, Value) {
        let dir = self.path(name);
        let emb = self.path("emb.npy");
        let lens = self.path("lens64.npy");
        let mut args = vec![
            "index",
            s(&dir),
            "--embeddings",
            s(&emb),
            "--doclens",
            s(&lens),
            "--threads",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        let summary = ok_json(&args);
        (dir, summary)
    }

    /// Writes the tokens of documents `docs` as queries, one per document.
    fn doc_queries(&self, docs: &[usize], stem: &str) -> (PathBuf, PathBuf) {
        let (mut rows, mut lens) = (Vec::new(), Vec::new());
        for &d in docs {
            let r = self.rows(d);
            rows.extend_from_slice(&self.corpus.embeddings[r.start * DIM..r.end * DIM]);
            lens.push(r.len() as i64);
        }
        let (q, ql) = (
            self.path(&format!("{stem}.npy")),
            self.path(&format!("{stem}-lens.npy")),
        );
        write(&q, &[rows.len() / DIM, DIM], &rows);
        write(&ql, &[lens.len()], &lens);
        (q, ql)
    }
}

/// Total bytes of the regular files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn index_prints_a_json_summary_for_int32_and_int64_lengths() {
    let inp = Inputs::new(60);
    for lens in ["lens32.npy", "lens64.npy"] {
        let dir = inp.path(&format!("idx-{lens}"));
        let summary = ok_json(&[
            "index",
            s(&dir),
            "--embeddings",
            s(&inp.path("emb.npy")),
            "--doclens",
            s(&inp.path(lens)),
            "--json",
        ]);
        assert_has_keys(
            &summary,
            &[
                "build_s",
                "num_docs",
                "num_tokens",
                "index_bytes",
                "peak_rss_kb",
            ],
        );
        assert_eq!(u(&summary, "num_docs"), 60, "{summary}");
        assert_eq!(u(&summary, "num_tokens"), inp.num_tokens() as u64);
        assert_eq!(u(&summary, "index_bytes"), dir_bytes(&dir));
        assert!(summary["build_s"].as_f64().unwrap() >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(u(&summary, "peak_rss_kb") > 0);
        }
    }
}

#[test]
fn index_accepts_float16_embeddings() {
    let inp = Inputs::new(40);
    let emb16 = inp.path("emb16.npy");
    write_f16(&emb16, &[inp.num_tokens(), DIM], &inp.corpus.embeddings);
    let dir = inp.path("idx16");
    let summary = ok_json(&[
        "index",
        s(&dir),
        "--embeddings",
        s(&emb16),
        "--doclens",
        s(&inp.path("lens32.npy")),
        "--json",
    ]);
    assert_eq!(u(&summary, "num_docs"), 40);
    assert_eq!(u(&summary, "num_tokens"), inp.num_tokens() as u64);
    // Queries are float32 copies of documents' tokens: each finds its document.
    let docs = [0, 7, 39];
    let (q, ql) = inp.doc_queries(&docs, "q");
    let ids = inp.path("ids.npy");
    ok_json(&[
        "search",
        s(&dir),
        "--queries",
        s(&q),
        "--query-lens",
        s(&ql),
        "--k",
        "3",
        "--output",
        s(&ids),
        "--json",
    ]);
    let ids = read(&ids);
    let firsts: Vec<i64> = ids
        .as_slice::<i64>()
        .unwrap()
        .chunks(3)
        .map(|r| r[0])
        .collect();
    assert_eq!(firsts, [0, 7, 39]);
}

#[test]
fn search_writes_ids_scores_and_a_json_summary() {
    let inp = Inputs::new(80);
    let (dir, built) = inp.index("idx", &[]);
    let (rows, lens, _src) = synth::queries(&inp.corpus, 5, 4, 1);
    let lens: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
    let (q, ql) = (inp.path("q.npy"), inp.path("ql.npy"));
    write(&q, &[rows.len() / DIM, DIM], &rows);
    write(&ql, &[lens.len()], &lens);
    let (ids, scores) = (inp.path("ids.npy"), inp.path("s.npy"));
    let summary = ok_json(&[
        "search",
        s(&dir),
        "--queries",
        s(&q),
        "--query-lens",
        s(&ql),
        "--k",
        "7",
        "--output",
        s(&ids),
        "--scores",
        s(&scores),
        "--batch",
        "--threads",
        "2",
        "--json",
    ]);
    assert_has_keys(
        &summary,
        &[
            "num_queries",
            "k",
            "threads",
            "load_s",
            "qps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "batch_qps",
            "peak_rss_kb",
        ],
    );
    assert_eq!(u(&summary, "num_queries"), 5);
    assert_eq!(u(&summary, "k"), 7);
    assert_eq!(u(&summary, "threads"), 2);
    for key in ["load_s", "qps", "p50_ms", "p95_ms", "p99_ms", "batch_qps"] {
        assert!(summary[key].as_f64().unwrap() >= 0.0, "{key} in {summary}");
    }
    let p = |key| summary[key].as_f64().unwrap();
    assert!(p("p50_ms") <= p("p95_ms") && p("p95_ms") <= p("p99_ms"));

    let ids = read(&ids);
    assert_eq!((ids.dtype(), ids.shape()), (DType::I64, &[5, 7][..]));
    let scores = read(&scores);
    assert_eq!((scores.dtype(), scores.shape()), (DType::F32, &[5, 7][..]));
    let n = u(&built, "num_docs") as i64;
    for (row, srow) in ids
        .as_slice::<i64>()
        .unwrap()
        .chunks(7)
        .zip(scores.as_slice::<f32>().unwrap().chunks(7))
    {
        assert!(row.iter().all(|&d| (0..n).contains(&d)), "{row:?}");
        assert!(srow.windows(2).all(|w| w[0] >= w[1]), "{srow:?}");
    }
    assert_eq!(summary["exact_scoring"], "int8");

    // Float exact scoring: the same best documents (each query is made from
    // one), scores within the integer path's rounding (1e-2 per token).
    let (ids_f, scores_f) = (inp.path("ids_f.npy"), inp.path("s_f.npy"));
    let float = ok_json(&[
        "search",
        s(&dir),
        "--queries",
        s(&q),
        "--query-lens",
        s(&ql),
        "--k",
        "7",
        "--output",
        s(&ids_f),
        "--scores",
        s(&scores_f),
        "--exact-scoring",
        "float",
        "--json",
    ]);
    assert_eq!(float["exact_scoring"], "float");
    let (ids_f, scores_f) = (read(&ids_f), read(&scores_f));
    let (a, b) = (
        ids.as_slice::<i64>().unwrap(),
        ids_f.as_slice::<i64>().unwrap(),
    );
    let (sa, sb) = (
        scores.as_slice::<f32>().unwrap(),
        scores_f.as_slice::<f32>().unwrap(),
    );
    for (qi, &len) in lens.iter().enumerate() {
        assert_eq!(a[qi * 7], b[qi * 7], "query {qi}: best document");
        let diff = (sa[qi * 7] - sb[qi * 7]).abs();
        assert!(diff <= 1e-2 * len as f32, "query {qi}: {diff}");
    }
}

#[test]
fn search_pads_with_minus_one_when_k_exceeds_the_corpus() {
    let inp = Inputs::new(6);
    let (dir, _) = inp.index("idx", &["--num-centroids", "4"]);
    let (q, ql) = inp.doc_queries(&[2, 4], "q");
    for exhaustive in [false, true] {
        let (ids, scores) = (inp.path("ids.npy"), inp.path("s.npy"));
        let mut args = vec![
            "search",
            s(&dir),
            "--queries",
            s(&q),
            "--query-lens",
            s(&ql),
            "--k",
            "10",
            "--output",
            s(&ids),
            "--scores",
            s(&scores),
            "--json",
        ];
        if exhaustive {
            args.push("--exhaustive");
        }
        let summary = ok_json(&args);
        assert_eq!(summary["exhaustive"], Value::Bool(exhaustive));
        let (ids, scores) = (read(&ids), read(&scores));
        assert_eq!(ids.shape(), [2, 10]);
        for (row, srow) in ids
            .as_slice::<i64>()
            .unwrap()
            .chunks(10)
            .zip(scores.as_slice::<f32>().unwrap().chunks(10))
        {
            let mut found = row[..6].to_vec();
            found.sort_unstable();
            assert_eq!(
                found,
                [0, 1, 2, 3, 4, 5],
                "exhaustive {exhaustive}: {row:?}"
            );
            assert_eq!(row[6..], [-1; 4], "exhaustive {exhaustive}: {row:?}");
            assert!(srow[..6].iter().all(|s| s.is_finite()), "{srow:?}");
            assert!(
                srow[6..].iter().all(|&s| s == f32::NEG_INFINITY),
                "{srow:?}"
            );
        }
    }
}

#[test]
fn exhaustive_ranks_a_documents_own_tokens_first() {
    let inp = Inputs::new(50);
    let (dir, _) = inp.index("idx", &["--nbits", "2"]);
    let docs = [0, 13, 26, 49];
    let (q, ql) = inp.doc_queries(&docs, "q");
    let ids = inp.path("ids.npy");
    let summary = ok_json(&[
        "search",
        s(&dir),
        "--queries",
        s(&q),
        "--query-lens",
        s(&ql),
        "--k",
        "5",
        "--output",
        s(&ids),
        "--exhaustive",
        "--batch",
        "--json",
    ]);
    assert_eq!(summary["exhaustive"], Value::Bool(true));
    // The batch API is PLAID search only; exhaustive runs do not time it.
    assert_eq!(summary["batch_qps"], Value::Null);
    let ids = read(&ids);
    let firsts: Vec<i64> = ids
        .as_slice::<i64>()
        .unwrap()
        .chunks(5)
        .map(|r| r[0])
        .collect();
    assert_eq!(firsts, docs.map(|d| d as i64));
}

#[test]
fn info_describes_the_index() {
    let inp = Inputs::new(70);
    let (dir, built) = inp.index("idx", &["--nbits", "2", "--num-centroids", "32"]);
    let info = ok_json(&["info", s(&dir), "--json"]);
    assert_has_keys(
        &info,
        &[
            "num_docs",
            "num_tokens",
            "num_centroids",
            "dim",
            "nbits",
            "index_bytes",
        ],
    );
    assert_eq!(u(&info, "num_docs"), 70);
    assert_eq!(u(&info, "num_tokens"), inp.num_tokens() as u64);
    assert_eq!(u(&info, "num_centroids"), 32);
    assert_eq!(u(&info, "dim"), DIM as u64);
    assert_eq!(u(&info, "nbits"), 2);
    assert_eq!(u(&info, "index_bytes"), u(&built, "index_bytes"));
    assert_eq!(u(&info, "index_bytes"), dir_bytes(&dir));
    // Without --json it is still JSON, pretty-printed.
    let out = plaid(&["info", s(&dir)]);
    assert!(out.status.success());
    let pretty: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&pretty), keys(&info));
}

/// Everything in `dir`, names and contents, for checking that it is untouched.
fn snapshot(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn rejects_bad_input_with_one_error_line() {
    let inp = Inputs::new(40);
    let p = |name: &str| inp.path(name);
    let (idx, _) = inp.index("idx", &[]);
    let (q, ql) = inp.doc_queries(&[1, 2], "q");

    // Inputs for the failing commands.
    let good = std::fs::read(p("emb.npy")).unwrap();
    std::fs::write(p("truncated.npy"), &good[..good.len() - 10]).unwrap();
    write_raw_npy(&p("huge.npy"), "<f4", "(1099511627776, 16)", &[0; 64]);
    write_raw_npy(
        &p("overflow.npy"),
        "<f4",
        "(18446744073709551615, 16)",
        &[0; 64],
    );
    let mut lens = inp
        .corpus
        .doclens
        .iter()
        .map(|&l| l as i64)
        .collect::<Vec<_>>();
    lens[0] += 1;
    write(&p("badlens.npy"), &[lens.len()], &lens);
    lens[0] = -1;
    write(&p("neglens.npy"), &[lens.len()], &lens);
    write(&p("floatlens.npy"), &[2], &[1.0f32, 2.0]);
    let narrow = vec![0.25f32; 6 * 8];
    write(&p("q8.npy"), &[6, 8], &narrow);
    write(&p("q8-lens.npy"), &[2], &[3i64, 3]);
    write(&p("short-lens.npy"), &[2], &[1i64, 1]);
    std::fs::create_dir(p("not-an-index")).unwrap();
    std::fs::write(p("not-an-index/notes.txt"), b"hello").unwrap();
    std::fs::create_dir(p("full")).unwrap();
    std::fs::write(p("full/precious.txt"), b"keep me").unwrap();

    let (emb, lens64) = (p("emb.npy"), p("lens64.npy"));
    let build = |dir: &str, emb: &Path, lens: &Path, extra: &[&str]| -> Vec<String> {
        let mut v = vec!["index".into(), s(&p(dir)).into(), "--embeddings".into()];
        v.extend([s(emb).into(), "--doclens".into(), s(lens).into()]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let search = |dir: &Path, q: &Path, ql: &Path, extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "search".into(),
            s(dir).into(),
            "--queries".into(),
            s(q).into(),
        ];
        v.extend(["--query-lens".into(), s(ql).into()]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    // (what, arguments, a word the message must contain, directory that must not appear)
    let cases: Vec<(&str, Vec<String>, &str, Option<&str>)> = vec![
        (
            "missing embeddings",
            build("out1", &p("missing.npy"), &lens64, &[]),
            "missing.npy",
            Some("out1"),
        ),
        (
            "truncated npy",
            build("out2", &p("truncated.npy"), &lens64, &[]),
            "truncated.npy",
            Some("out2"),
        ),
        (
            "huge shape",
            build("out3", &p("huge.npy"), &lens64, &[]),
            "huge.npy",
            Some("out3"),
        ),
        (
            "shape overflowing u64",
            build("out4", &p("overflow.npy"), &lens64, &[]),
            "overflow.npy",
            Some("out4"),
        ),
        (
            "lengths not adding up",
            build("out5", &emb, &p("badlens.npy"), &[]),
            "add up",
            Some("out5"),
        ),
        (
            "negative length",
            build("out6", &emb, &p("neglens.npy"), &[]),
            "neglens.npy",
            Some("out6"),
        ),
        (
            "float lengths",
            build("out7", &emb, &p("floatlens.npy"), &[]),
            "floatlens.npy",
            Some("out7"),
        ),
        (
            "nbits 3",
            build("out8", &emb, &lens64, &["--nbits", "3"]),
            "nbits",
            Some("out8"),
        ),
        (
            "unknown quantizer",
            build("out9", &emb, &lens64, &["--quantizer", "pq"]),
            "pq",
            Some("out9"),
        ),
        (
            "target not empty",
            build("full", &emb, &lens64, &[]),
            "full",
            None,
        ),
        (
            "not an index",
            search(&p("not-an-index"), &q, &ql, &[]),
            "not-an-index",
            None,
        ),
        (
            "missing index",
            search(&p("nowhere"), &q, &ql, &[]),
            "nowhere",
            Some("nowhere"),
        ),
        (
            "wrong query dimension",
            search(&idx, &p("q8.npy"), &p("q8-lens.npy"), &[]),
            "dimension 8",
            None,
        ),
        (
            "query lengths not adding up",
            search(&idx, &q, &p("short-lens.npy"), &[]),
            "add up",
            None,
        ),
        ("k = 0", search(&idx, &q, &ql, &["--k", "0"]), "k", None),
        (
            "k = 0, exhaustive",
            search(&idx, &q, &ql, &["--k", "0", "--exhaustive"]),
            "k",
            None,
        ),
    ];
    let full_before = snapshot(&p("full"));
    let idx_before = snapshot(&idx);
    for (what, args, word, absent) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = error_line(&args);
        assert!(
            line.contains(word),
            "{what}: {line:?} does not mention {word:?}"
        );
        if let Some(dir) = absent {
            assert!(!p(dir).exists(), "{what}: {dir} was created");
        }
    }
    assert_eq!(
        snapshot(&p("full")),
        full_before,
        "the non-empty target changed"
    );
    assert_eq!(snapshot(&idx), idx_before, "searching changed the index");
}

#[test]
fn demo_reaches_high_recall() {
    let summary = ok_json(&["demo", "--docs", "300", "--threads", "2", "--json"]);
    assert_has_keys(
        &summary,
        &[
            "num_docs",
            "build_s",
            "recall_at_10_vs_exhaustive",
            "source_doc_at_1",
        ],
    );
    assert_eq!(u(&summary, "num_docs"), 300);
    let recall = summary["recall_at_10_vs_exhaustive"].as_f64().unwrap();
    assert!(recall >= 0.9, "recall@10 {recall} in {summary}");
}

/// A copy of a committed import fixture's index (see tests/data/import).
fn import_fixture(name: &str, into: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(name)
        .join("index");
    let to = into.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

#[test]
fn import_detects_the_source_and_writes_a_searchable_index() {
    let tmp = TempDir::new().unwrap();
    let np = import_fixture("np185-d32-nb2", tmp.path());
    let before = snapshot(&np);
    let out = tmp.path().join("out");
    let v = ok_json(&["import", s(&out), s(&np), "--json"]);
    assert_has_keys(
        &v,
        &[
            "import_s",
            "from",
            "detected",
            "num_docs",
            "num_tokens",
            "num_centroids",
            "dim",
            "nbits",
            "tokens_from",
            "source_ivf_matches",
            "skipped",
            "index_bytes",
        ],
    );
    assert_eq!(v["from"], "next-plaid");
    assert_eq!(v["detected"], true);
    assert_eq!(v["tokens_from"], "chunks");
    assert_eq!(v["source_ivf_matches"], true);
    assert_eq!(
        (
            u(&v, "num_docs"),
            u(&v, "num_tokens"),
            u(&v, "num_centroids")
        ),
        (60, 1289, 512)
    );
    assert_eq!(u(&v, "index_bytes"), dir_bytes(&out));
    let skipped = v["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|f| f["name"] == "0.inv_norms.npy"));
    assert_eq!(snapshot(&np), before, "the source changed");

    // The result is an ordinary plaid index.
    let info = ok_json(&["info", s(&out), "--json"]);
    assert_eq!(u(&info, "num_docs"), 60);
    assert_eq!(info["quantizer"], "global");

    // fast-plaid 1.7 (merged files only) is detected too; the text summary
    // lists skipped files, such as fast-plaid 1.6's pickled embeddings.
    let fp = import_fixture("fastplaid17-d32-nb4", tmp.path());
    let v = ok_json(&["import", s(&tmp.path().join("out2")), s(&fp), "--json"]);
    assert_eq!(v["from"], "fast-plaid");
    assert_eq!(v["tokens_from"], "merged");
    let fp16 = import_fixture("fastplaid16-d32-nb4", tmp.path());
    let out3 = tmp.path().join("out3");
    let run = plaid(&["import", s(&out3), s(&fp16), "--from", "fast-plaid"]);
    assert!(run.status.success());
    let stdout = text(&run.stdout);
    assert!(stdout.starts_with("imported 60 documents"), "{stdout}");
    assert!(
        stdout.contains("skipped embeddings.npy: pickled object array"),
        "{stdout}"
    );
}

#[test]
fn import_explains_unknown_and_ambiguous_layouts() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("out");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("data.bin"), b"x").unwrap();
    let line = error_line(&["import", s(&out), s(&empty)]);
    assert!(
        line.contains("not a recognised next-plaid or fast-plaid index"),
        "{line}"
    );
    assert!(line.contains("data.bin"), "{line}");

    // A fast-plaid index that next-plaid converted in place.
    let fp = import_fixture("fastplaid16-d32-nb4", tmp.path());
    let meta = fp.join("metadata.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["next_plaid_compatible"] = true.into();
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let line = error_line(&["import", s(&out), s(&fp)]);
    assert!(line.contains("ambiguous"), "{line}");
    assert!(
        line.contains("next_plaid_compatible") && line.contains("compress_only"),
        "{line}"
    );
    let line = error_line(&["import", s(&out), s(&fp), "--from", "colbert"]);
    assert!(line.contains("unknown source format \"colbert\""), "{line}");
    assert!(!out.exists());
    let v = ok_json(&["import", s(&out), s(&fp), "--from", "fast-plaid", "--json"]);
    assert_eq!(v["detected"], false);

    // A damaged source: one line naming the file, nothing written.
    let np = import_fixture("np112-d32-nb4", tmp.path());
    std::fs::remove_file(np.join("0.residuals.npy")).unwrap();
    let out2 = tmp.path().join("out2");
    let line = error_line(&["import", s(&out2), s(&np)]);
    assert!(
        line.contains("0.residuals.npy") && line.contains("chunk 0"),
        "{line}"
    );
    assert!(!out2.exists());
}

#[test]
fn add_delete_compact_verify_and_info() {
    let inputs = Inputs::new(40);
    let (dir, _) = inputs.index("idx", &[]);
    let emb = inputs.path("emb.npy");
    let lens = inputs.path("lens32.npy");
    let info = ok_json(&["info", s(&dir), "--json"]);
    assert_eq!(u(&info, "num_docs"), 40);
    assert_eq!(u(&info, "num_tokens"), inputs.num_tokens() as u64);

    // The same 40 documents again: ids 40..=79.
    let added = ok_json(&[
        "add",
        s(&dir),
        "--embeddings",
        s(&emb),
        "--doclens",
        s(&lens),
        "--json",
    ]);
    assert_eq!(added["ids"], serde_json::json!([40, 79]));
    assert_eq!(u(&added, "num_docs"), 80);

    let deleted = ok_json(&["delete", s(&dir), "--ids", "3,17,42", "--json"]);
    assert_eq!(deleted["ids"], serde_json::json!([3, 17, 42]));
    assert_eq!(u(&deleted, "deleted"), 3);
    let ids_file = inputs.path("ids.txt");
    std::fs::write(&ids_file, "5\n\n79\n").unwrap();
    let deleted = ok_json(&["delete", s(&dir), "--ids-file", s(&ids_file), "--json"]);
    assert_eq!(deleted["ids"], serde_json::json!([5, 79]));

    let info = ok_json(&["info", s(&dir), "--json"]);
    assert_eq!(u(&info, "num_docs"), 75);
    let gone: usize = [3usize, 17, 5]
        .iter()
        .map(|&d| inputs.corpus.doclens[d])
        .sum::<usize>()
        + inputs.corpus.doclens[2]
        + inputs.corpus.doclens[39];
    assert_eq!(
        u(&info, "num_tokens"),
        (2 * inputs.num_tokens() - gone) as u64
    );

    // Unknown and already deleted ids: one error line naming them.
    let line = error_line(&["delete", s(&dir), "--ids", "3,1000"]);
    assert!(line.contains("1000"), "{line}");
    let line = error_line(&["delete", s(&dir), "--ids", "3"]);
    assert!(
        line.contains("already deleted") && line.contains('3'),
        "{line}"
    );

    let compacted = ok_json(&["compact", s(&dir), "--json"]);
    assert_eq!(u(&compacted, "segments_after"), 1);
    let verified = ok_json(&["verify", s(&dir), "--json"]);
    assert_eq!(u(&verified, "num_docs"), 75);
    assert_eq!(u(&verified, "num_deleted"), 0);
    let info = ok_json(&["info", s(&dir), "--json"]);
    assert_eq!(u(&info, "num_docs"), 75);
}

/// Metadata of document `i` in the metadata tests.
fn doc_meta(i: usize) -> Value {
    let section = ["libs", "net", "games", "admin"][i % 4];
    serde_json::json!({"section": section, "installed_size": i * 10})
}

#[test]
fn metadata_index_filtered_search_and_meta() {
    let inp = Inputs::new(80);
    let jsonl: String = (0..80).map(|i| format!("{}\n", doc_meta(i))).collect();
    let meta = inp.path("meta.jsonl");
    std::fs::write(&meta, jsonl).unwrap();
    let (dir, _) = inp.index("idx", &["--metadata", s(&meta)]);
    let allowed: Vec<i64> = (0..80)
        .filter(|&i| i % 4 == 0 && i * 10 < 500)
        .map(|i| i as i64)
        .collect();
    let (q, ql) = inp.doc_queries(&[0, 1, 2, 3, 44], "q");
    let ids = inp.path("ids.npy");
    let summary = ok_json(&[
        "search",
        s(&dir),
        "--queries",
        s(&q),
        "--query-lens",
        s(&ql),
        "--k",
        "5",
        "--filter",
        "section = ? AND installed_size < ?",
        "--param",
        "libs",
        "--param",
        "500",
        "--output",
        s(&ids),
        "--json",
    ]);
    assert_eq!(summary["filter"], "section = ? AND installed_size < ?");
    let got = read(&ids);
    let got = got.as_slice::<i64>().unwrap();
    assert!(got.iter().all(|d| allowed.contains(d)), "{got:?}");
    // Query 0 is document 0's own tokens, and document 0 passes the filter.
    assert_eq!(got[0], 0);

    let out = plaid(&["meta", s(&dir), "--ids", "1,2,79"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, i) in lines.iter().zip([1, 2, 79]) {
        assert_eq!(line["id"], i);
        assert_eq!(line["metadata"], doc_meta(i));
    }
    let count = ok_json(&[
        "meta",
        s(&dir),
        "--filter",
        "section IN (?, ?)",
        "--param",
        "net",
        "--param",
        "games",
        "--count",
        "--json",
    ]);
    assert_eq!(u(&count, "count"), 40);

    // Refused filters and a metadata count mismatch: one error line each.
    let line = error_line(&[
        "meta",
        s(&dir),
        "--filter",
        "section = ?; DROP TABLE x",
        "--param",
        "a",
    ]);
    assert!(line.contains("byte 11"), "{line}");
    let line = error_line(&[
        "meta",
        s(&dir),
        "--filter",
        "nosuch = ?",
        "--param",
        "a",
        "--count",
    ]);
    assert!(line.contains("unknown column"), "{line}");
    std::fs::write(&meta, "{\"a\": 1}\n").unwrap();
    let emb = inp.path("emb.npy");
    let lens = inp.path("lens64.npy");
    let bad_dir = inp.path("bad");
    let line = error_line(&[
        "index",
        s(&bad_dir),
        "--embeddings",
        s(&emb),
        "--doclens",
        s(&lens),
        "--metadata",
        s(&meta),
    ]);
    assert!(
        line.contains("1 metadata entries for 80 documents"),
        "{line}"
    );
    assert!(!bad_dir.exists());
}

#[test]
fn add_with_metadata_then_filter_and_delete() {
    let inp = Inputs::new(40);
    let jsonl: String = (0..40).map(|i| format!("{}\n", doc_meta(i))).collect();
    let meta = inp.path("meta.jsonl");
    std::fs::write(&meta, jsonl).unwrap();
    let (dir, _) = inp.index("idx", &["--metadata", s(&meta)]);
    // The same 40 documents again, with the metadata of documents 40..80.
    let more: String = (40..80).map(|i| format!("{}\n\n", doc_meta(i))).collect();
    let more_meta = inp.path("more.jsonl");
    std::fs::write(&more_meta, more).unwrap();
    let emb = inp.path("emb.npy");
    let lens = inp.path("lens32.npy");
    let added = ok_json(&[
        "add",
        s(&dir),
        "--embeddings",
        s(&emb),
        "--doclens",
        s(&lens),
        "--metadata",
        s(&more_meta),
        "--json",
    ]);
    assert_eq!(added["ids"], serde_json::json!([40, 79]));
    let out = plaid(&["meta", s(&dir), "--ids", "39,40,79"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, i) in lines.iter().zip([39, 40, 79]) {
        assert_eq!(line["metadata"], doc_meta(i));
    }
    let count = |cond: &str| {
        u(
            &ok_json(&["meta", s(&dir), "--filter", cond, "--count", "--json"]),
            "count",
        )
    };
    // installed_size = 10·i, so 400..790 are the added documents.
    assert_eq!(count("installed_size >= 400"), 40);
    assert_eq!(count("section = 'libs'"), 20);
    ok_json(&["delete", s(&dir), "--ids", "40,44", "--json"]);
    assert_eq!(count("installed_size >= 400"), 38);
    assert_eq!(count("section = 'libs'"), 18);

    // Wrong count and a non-object line: one error line each, nothing added.
    std::fs::write(&more_meta, "{\"a\": 1}\n").unwrap();
    let args = [
        "add",
        s(&dir),
        "--embeddings",
        s(&emb),
        "--doclens",
        s(&lens),
        "--metadata",
        s(&more_meta),
    ];
    let line = error_line(&args);
    assert!(
        line.contains("1 metadata entries for 40 documents"),
        "{line}"
    );
    let bad: String = (0..40)
        .map(|i| {
            if i == 7 {
                "[7]\n".to_owned()
            } else {
                format!("{}\n", doc_meta(i))
            }
        })
        .collect();
    std::fs::write(&more_meta, bad).unwrap();
    let line = error_line(&args);
    assert!(line.contains("entry 7 is not a JSON object"), "{line}");
    let info = ok_json(&["info", s(&dir), "--json"]);
    assert_eq!(u(&info, "num_docs"), 78);
}
