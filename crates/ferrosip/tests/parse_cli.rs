//! `ferrosip parse` run as a process on every torture message of the test data.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn data_dir() -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "../../tests/data/conformance"]
        .iter()
        .collect()
}

fn parse(file: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrosip"))
        .arg("parse")
        .arg(file)
        .output()
        .expect("run ferrosip");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn torture_messages_through_the_cli() {
    let classes = std::fs::read_to_string(data_dir().join("classes.txt")).expect("classes.txt");
    let mut checked = 0;
    for line in classes
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (file, class) = line.split_once(' ').expect("file and class");
        let (code, stdout, stderr) = parse(&data_dir().join(file));
        match class {
            "valid" | "sanity400" => {
                assert_eq!(code, 0, "{file}: {stderr}");
                let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
                assert!(
                    json["headers"].as_array().is_some_and(|h| !h.is_empty()),
                    "{file}"
                );
                assert_eq!(
                    json["sanity_error"].is_null(),
                    class == "valid",
                    "{file}: {}",
                    json["sanity_error"]
                );
            }
            "invalid" => {
                assert_eq!(code, 1, "{file}: {stdout}");
                assert!(
                    stderr.starts_with("malformed message: ") && stderr.contains("\n  line "),
                    "{file}: {stderr}"
                );
            }
            _ => assert!(code == 0 || code == 1, "{file}: exit {code}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 61);
}

#[test]
fn json_fields_and_offending_line() {
    let (code, stdout, _) = parse(&data_dir().join("rfc4475/esc01.dat"));
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["type"], "request");
    assert_eq!(json["method"], "INVITE");
    assert_eq!(json["request_uri"]["user"], "sips%3Auser%40example.com");
    assert_eq!(json["body_length"], 150);
    let via = &json["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|h| h["name"] == "Via")
        .expect("Via")["parsed"][0];
    assert_eq!(via["params"]["branch"], "z9hG4bKkdjuw");
    let call_id = json["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|h| h["raw_name"] == "i")
        .expect("Call-ID");
    assert_eq!(call_id["name"], "Call-ID");

    let (code, _, stderr) = parse(&data_dir().join("rfc4475/baddate.dat"));
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid Date header"), "{stderr}");
    assert!(
        stderr.contains("line 8: Date: Fri, 01 Jan 2010 16:00:00 EST"),
        "{stderr}"
    );
}

#[test]
fn reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrosip"))
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (json["status"].as_u64(), json["reason"].as_str()),
        (Some(200), Some("OK"))
    );
}
