//! The real `rdp-doctor` binary with its own private PostgreSQL: a case survives a restart,
//! shutdown is graceful, and the command line refuses bad input in one line.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::temp_dir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_rdp-doctor");

async fn start_server(state_dir: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--site-root", "no-site"])
        .arg("--state-dir")
        .arg(state_dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("the server starts within 90 s")
        .unwrap()
        .expect("the server prints its address");
    let url = line
        .strip_prefix("RDP Doctor is running at ")
        .expect("address line")
        .trim_end_matches('/')
        .to_owned();
    (child, url)
}

async fn stop_gracefully(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the server stops within 30 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn a_case_survives_a_server_restart() {
    let state = temp_dir("restart");
    let (server, url) = start_server(&state).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{url}/api/v1/cases"))
        .json(&serde_json::json!({"host": "localhost", "port": "3390", "error_code": "0x904"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    stop_gracefully(server).await;
    assert!(
        !state.join("postgres/postmaster.pid").exists(),
        "the private PostgreSQL stops with the server"
    );

    let (server, url) = start_server(&state).await;
    let case: serde_json::Value = client
        .get(format!("{url}/api/v1/cases/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(case["target_host"], "localhost");
    assert_eq!(case["target_port"], 3390);
    assert_eq!(case["error_code"], 0x904);
    let page = client
        .get(format!("{url}/cases/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("localhost (port 3390)"), "{html}");
    stop_gracefully(server).await;
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test]
async fn bad_command_line_input_is_one_line_and_a_non_zero_exit() {
    for args in [
        vec!["token", "create", "--expires-in", "soon"],
        vec!["token", "create", "--uses", "0"],
        vec!["serve", "--listen", "not-an-address"],
        vec!["frobnicate"],
    ] {
        let output = Command::new(BIN).args(&args).output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
    }
}
