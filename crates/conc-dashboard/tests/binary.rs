//! The `conc-dashboard` binary: a bad backend is refused before anything is
//! opened or served.

#[test]
fn the_binary_refuses_a_missing_queue_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("jobs.db");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conc-dashboard"))
        .args(["--backend", &format!("sqlite:{}", missing.display()), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no queue file"), "{stderr}");
    assert!(!missing.exists(), "nothing was created");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conc-dashboard"))
        .args(["--backend", "ftp://example", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ftp://example"), "{stderr}");
}
