//! What a results file says about the machine and the code it measured.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// SIMD features worth naming for this kind of work, in /proc/cpuinfo spelling.
const SIMD: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vpopcntdq",
    "avx512vbmi",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
];

/// The machine and toolchain, as `(what, value)` rows.
pub(crate) fn describe(root: &std::path::Path) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let flags: Vec<String> = field("flags")
        .or_else(|| field("Features"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let simd: Vec<&str> = SIMD
        .iter()
        .copied()
        .filter(|f| flags.iter().any(|x| x == f))
        .collect();
    let absent: Vec<&str> = ["avx512_fp16", "amx_tile"]
        .into_iter()
        .filter(|f| !simd.contains(f))
        .collect();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(|l| l.trim_start_matches("MemTotal:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpu = format!(
        "{} (family {}, model {}); {} logical CPUs",
        cpu_model(),
        field("cpu family").unwrap_or_else(|| "?".into()),
        field("model").unwrap_or_else(|| "?".into()),
        cores
    );
    let mut rows = vec![
        ("date (UTC)".to_string(), now_utc().1),
        ("CPU".into(), cpu),
        (
            "SIMD".into(),
            format!(
                "{}{}",
                simd.join(", "),
                if absent.is_empty() {
                    String::new()
                } else {
                    format!("; absent: {}", absent.join(", "))
                }
            ),
        ),
        ("memory".into(), mem),
        (
            "kernel".into(),
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
        ),
        ("rustc".into(), output("rustc", &["-V"], root)),
        ("git commit".into(), git_commit(root)),
    ];
    if let Ok(flags) = std::env::var("RUSTFLAGS") {
        rows.push(("RUSTFLAGS".into(), flags));
    }
    rows
}

/// The CPU's model name (or "unknown-cpu").
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-cpu".into())
}

/// A file-name slug of the CPU model and core count, e.g. `amd-epyc-2c`.
pub(crate) fn cpu_slug() -> String {
    let mut slug = String::new();
    let model = cpu_model()
        .to_lowercase()
        .replace("(r)", "")
        .replace("(tm)", "")
        .replace(" processor", "")
        .replace(" cpu", "");
    for c in model.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(32).collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{}-{cores}c", slug.trim_end_matches('-'))
}

fn output(prog: &str, args: &[&str], dir: &std::path::Path) -> String {
    Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `HEAD`'s short hash, with `+uncommitted changes` when the tree is dirty.
pub(crate) fn git_commit(root: &std::path::Path) -> String {
    let head = output("git", &["rev-parse", "--short=12", "HEAD"], root);
    let dirty = !output("git", &["status", "--porcelain"], root).is_empty();
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

/// Today's date (`YYYY-MM-DD`) and the time (`YYYY-MM-DD HH:MM`), in UTC.
pub(crate) fn now_utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let hm = format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
    (date.clone(), format!("{date} {hm}"))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_544), (2026, 4, 1));
    }
}
