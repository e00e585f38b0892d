//! The Windows install script: rendered for a valid token only, downloading nothing but this
//! server's agent, whose hash it checks.

mod common;

use common::{fresh_pool, spawn_app_with, temp_dir, test_settings};

#[tokio::test]
async fn the_install_script_names_only_this_server_and_the_agent_hash() {
    let dir = temp_dir("install");
    let exe = dir.join("rdp-doctor-agent.exe");
    std::fs::write(&exe, b"MZ pretend agent").unwrap();
    let mut settings = test_settings();
    settings.windows_agent = exe.clone();
    let app = spawn_app_with(fresh_pool().await, settings).await;
    let token = app.create_token(1).await;

    let response = app
        .client
        .get(format!("{}/api/v1/agents/install/windows.ps1", app.address))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let script = response.text().await.unwrap();
    assert!(
        script.contains(&format!("$Server = '{}'", app.address)),
        "{script}"
    );
    assert!(script.contains(&format!("$Token = '{token}'")));
    let hash = agent_client::signing::sha256_hex(b"MZ pretend agent").to_ascii_uppercase();
    assert!(script.contains(&format!("$ExpectedSha256 = '{hash}'")));
    assert!(script.contains("New-Service"), "installs a Windows service");
    // Every address in the script is this server's (or the host's own, for the agent to
    // advertise): nothing comes from outside.
    for (at, _) in script.match_indices("http") {
        let rest = &script[at..];
        let ours = rest.starts_with(&app.address) || rest.starts_with("http://$(");
        assert!(ours, "unexpected address: {}", &rest[..rest.len().min(60)]);
    }
    let downloads: Vec<&str> = script
        .lines()
        .filter(|l| l.contains("Invoke-WebRequest"))
        .collect();
    assert_eq!(downloads.len(), 1);
    assert!(downloads[0].contains("\"$Server/downloads/rdp-doctor-agent.exe\""));

    let exe_bytes = app
        .client
        .get(format!("{}/downloads/rdp-doctor-agent.exe", app.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&exe_bytes[..], b"MZ pretend agent");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_install_script_is_refused_for_a_bad_token_or_a_missing_build() {
    let mut settings = test_settings();
    settings.windows_agent = temp_dir("no-exe").join("missing.exe");
    let app = spawn_app_with(fresh_pool().await, settings).await;
    let get = |token: String| {
        let request = app
            .client
            .get(format!("{}/api/v1/agents/install/windows.ps1", app.address))
            .query(&[("token", token)]);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        get("rdpd_enroll_unknown".into()).await,
        (401, "bad_token".into())
    );
    let token = app.create_token(1).await;
    assert_eq!(get(token.clone()).await, (503, "unavailable".into()));
    sqlx::query("UPDATE enrollment_tokens SET uses = max_uses")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(get(token).await, (401, "bad_token".into()));
}
