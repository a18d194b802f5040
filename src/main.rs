//! The oomgate binary: parse the command line, hand it to the library, print the error chain
//! and exit with the documented code (0 pass, 1 fail, 2 error, 3 inconclusive, 130/143
//! interrupted).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = oomgate::cli::Cli::parse();
    match oomgate::app::main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let chain: Vec<String> = err
                .chain()
                .map(|c| oomgate::report::sanitize_terminal(&c.to_string()).into_owned())
                .collect();
            let msg = chain.join("\n  caused by: ");
            eprintln!("oomgate: error: {msg}");
            ExitCode::from(oomgate::run::interrupted().unwrap_or(2))
        }
    }
}
