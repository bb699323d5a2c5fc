//! How a GPU test reports that it skipped: one `SKIP <test>: <reason>` line on
//! stderr and, where `PLAID_SKIP_LOG` names a file, the same line appended to
//! it. `cargo xtask ci` sets that variable and counts the file's lines, so a
//! skip is never silent even though the test harness captures stderr.

use std::io::Write;

/// Print and log one skip line.
pub(crate) fn report(test: &str, reason: &dyn std::fmt::Display) {
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("PLAID_SKIP_LOG") {
        // A lost log line makes CI report fewer skips, never pass a failing
        // test, so a write error only warns.
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = res {
            eprintln!("could not append to PLAID_SKIP_LOG: {e}");
        }
    }
}
