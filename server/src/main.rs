//! `rdp-doctor`: the server binary. Everything lives in the `server` library; this only
//! parses the command line and reports a failure as one line.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match server::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match server::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
