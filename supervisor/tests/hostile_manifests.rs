//! Hostile manifests through the real binary: each runs `supervisor run`
//! (and `supervisor validate`) under a 512 MiB address-space limit
//! (`prlimit --as`) and a wall-clock deadline, and must exit 1 quickly with
//! one line naming the manifest and the limit it broke. A normal manifest
//! still loads under the same limits. No root needed: a manifest is refused
//! before anything starts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The address-space limit the binary runs under.
const AS_LIMIT: u64 = 512 * 1024 * 1024;
/// How long a refusal may take (a debug build, on a shared machine).
const DEADLINE: Duration = Duration::from_secs(10);

struct Outcome {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

/// Runs the test-built `supervisor ARGS... MANIFEST` under the limits.
fn supervisor(args: &[&str], manifest: &Path, state: &Path) -> Outcome {
    let start = Instant::now();
    let mut child = Command::new("prlimit")
        .arg(format!("--as={AS_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_supervisor"))
        .args(args)
        .arg(manifest)
        .env("SUPERVISOR_STATE_DIR", state)
        .env("SUPERVISOR_LOG_DIR", state.join("logs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).map(|_| text)
    });
    // The deadline: past it (and a margin), the child is killed through
    // its handle (never waited yet, so the pid is still ours) and the test
    // fails on the elapsed time.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for supervisor") {
            break status;
        }
        if start.elapsed() > DEADLINE + Duration::from_secs(5) {
            let _ = child.kill();
            break child.wait().expect("wait for the killed supervisor");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap().expect("read stderr");
    Outcome {
        code: status.code(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Writes `text` as `name` in a fresh dir, runs both commands on it and
/// checks each exits 1 within the deadline with one line naming the file
/// and containing `expect`.
fn refused(name: &str, text: &[u8], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    let state = dir.path().join("state");
    for args in [&["run"][..], &["validate"][..]] {
        let out = supervisor(args, &path, &state);
        let what = format!(
            "{args:?} {name}: {:?} in {:?}: {}",
            out.code, out.elapsed, out.stderr
        );
        assert_eq!(out.code, Some(1), "{what}");
        assert!(out.elapsed < DEADLINE, "too slow: {what}");
        let line = out.stderr.trim_end();
        assert!(!line.contains('\n'), "more than one line: {what}");
        assert!(line.len() < 2048, "{} bytes of error: {what}", line.len());
        assert!(
            line.starts_with(&format!("supervisor: {}", path.display())),
            "the error does not name the manifest: {what}"
        );
        assert!(line.contains(expect), "expected {expect:?}: {what}");
    }
    // Refused before anything started: nothing in the state dir.
    assert!(
        !state.exists() || fs::read_dir(&state).unwrap().next().is_none(),
        "{name}: the refused run left state in {}",
        state.display()
    );
}

fn pod_header() -> String {
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n".into()
}

#[test]
fn a_mebibyte_of_document_markers() {
    // Once: each document padded with the newlines before it, N²/2 bytes
    // (gigabytes). Now: empty documents are dropped as they are split.
    let text = "---\n".repeat(256 * 1024);
    refused("dashes.yaml", text.as_bytes(), "no Pod");
    // Non-empty documents: the count limit.
    let text = "---\nkind: X\n".repeat(80 * 1024);
    refused(
        "documents.yaml",
        text.as_bytes(),
        "manifest limit exceeded: 81920 documents, the limit is 1024",
    );
}

#[test]
fn a_fifty_megabyte_string() {
    let mut text = pod_header();
    text.push_str("spec:\n  containers:\n  - name: c\n    image: ");
    text.push_str(&"x".repeat(50_000_000));
    text.push('\n');
    refused(
        "string.yaml",
        text.as_bytes(),
        "manifest limit exceeded: the file is 50000091 bytes, the limit is 3145728",
    );
}

#[test]
fn a_long_string_under_the_size_cap_is_clipped_in_the_error() {
    // 3 MB: under the cap, parsed, refused by validation; the error shows
    // a head of the value, not 3 MB.
    let mut text = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ");
    text.push_str(&"x".repeat(3_000_000));
    text.push_str("\nspec:\n  containers:\n  - {name: c, image: busybox}\n");
    refused("name.yaml", text.as_bytes(), "... (3000000 bytes)");
}

#[test]
fn nesting_a_hundred_thousand_deep() {
    // Under a field every document's first, lenient pass skips.
    let mut block = pod_header();
    block.push_str("x:\n");
    block.push_str(&"- ".repeat(100_000));
    block.push_str("a\n");
    refused(
        "deep.yaml",
        block.as_bytes(),
        "manifest limit exceeded: nesting deeper than 64 levels",
    );
    let mut flow = pod_header();
    flow.push_str("x: ");
    flow.push_str(&"[".repeat(100_000));
    flow.push_str(&"]".repeat(100_000));
    flow.push('\n');
    refused(
        "deep-flow.yaml",
        flow.as_bytes(),
        "recursion limit exceeded",
    );
}

#[test]
fn an_alias_bomb() {
    // Billion laughs: nine levels of nine aliases, 9^9 "lol"s expanded.
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        text.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    refused("bomb.yaml", text.as_bytes(), "manifest limit exceeded");
}

#[test]
fn a_million_keys() {
    // A million keys do not fit in 3 MiB: the size cap.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n");
    for i in 0..1_000_000 {
        text.push_str(&format!(" k{i}: v\n"));
    }
    refused(
        "keys.yaml",
        text.as_bytes(),
        "manifest limit exceeded: the file is",
    );
    // As many as fit: the node budget.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n");
    for i in 0..300_000 {
        text.push_str(&format!("{i}: v\n"));
    }
    assert!(text.len() < 3 * 1024 * 1024);
    refused(
        "keys-under-cap.yaml",
        text.as_bytes(),
        "manifest limit exceeded: more than 250000 YAML nodes",
    );
}

#[test]
fn a_file_over_the_size_cap_and_a_stream_without_end() {
    let mut text = pod_header();
    text.push_str("# padding\n");
    text.push_str(&"#".repeat(3 * 1024 * 1024));
    refused(
        "big.yaml",
        text.as_bytes(),
        "the limit is 3145728 (3 MiB, kube-apiserver's largest request body)",
    );
    // A device that never ends is read only up to the cap.
    let dir = tempfile::tempdir().unwrap();
    for args in [&["validate"][..], &["run"][..]] {
        let out = supervisor(args, Path::new("/dev/zero"), &dir.path().join("state"));
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.elapsed < DEADLINE, "{:?}", out.elapsed);
        assert!(
            out.stderr
                .contains("/dev/zero: manifest limit exceeded: the file is more than the limit of"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_normal_manifest_still_loads_under_the_same_limits() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let mut manifests = vec![root.join("examples/pod.yaml")];
    for entry in fs::read_dir(root.join("tests/manifests/good")).unwrap() {
        manifests.push(entry.unwrap().path());
    }
    for manifest in manifests {
        let out = supervisor(&["validate"], &manifest, &dir.path().join("state"));
        assert_eq!(out.code, Some(0), "{}: {}", manifest.display(), out.stderr);
        assert!(out.elapsed < DEADLINE, "{:?}", out.elapsed);
    }
    // And one with the biggest ConfigMap Kubernetes stores (1 MiB of data),
    // its line numbers still the file's after a few empty documents.
    let mut text = String::from("---\n---\n");
    text.push_str(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: page\ndata:\n  index.html: ",
    );
    text.push_str(&"y".repeat(1024 * 1024 - 100));
    text.push_str("\n---\n");
    text.push_str(&pod_header());
    text.push_str("spec:\n  containers:\n  - name: c\n    image: busybox\n    bogus: 1\n");
    let path = dir.path().join("big-configmap.yaml");
    fs::write(&path, &text).unwrap();
    let out = supervisor(&["validate"], &path, &dir.path().join("state"));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.elapsed < DEADLINE, "{:?}", out.elapsed);
    // `bogus` is on line 18 of the file.
    assert!(
        out.stderr
            .contains("big-configmap.yaml:18:5: document 2 (Pod web)"),
        "{}",
        out.stderr
    );
    let fixed = text.replace("    bogus: 1\n", "");
    fs::write(&path, fixed).unwrap();
    let out = supervisor(&["validate"], &path, &dir.path().join("state"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
