//! The `plaid` command-line tool: glue between flags and the library.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

mod cli;

fn main() {
    if let Err(e) = cli::run() {
        // One clear line on stderr, the causes joined; never a backtrace.
        let mut msg = format!("error: {e}");
        let mut src = e.source();
        while let Some(s) = src {
            let s_txt = s.to_string();
            if !msg.contains(&s_txt) {
                msg.push_str(": ");
                msg.push_str(&s_txt);
            }
            src = s.source();
        }
        eprintln!("{msg}");
        std::process::exit(1);
    }
}
