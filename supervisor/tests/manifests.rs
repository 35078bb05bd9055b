//! The manifest corpus, run through the library (no root needed).
//!
//! `tests/manifests/bad/*.yaml` each start with `# expect: TEXT`; loading
//! must fail with an error whose one-line message contains TEXT.
//! `tests/manifests/good/*.yaml` and `examples/pod.yaml` must load.

use std::fs;
use std::path::{Path, PathBuf};

use supervisor::spec::{self, ManifestError};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/manifests")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_manifest_fails_with_its_expected_error() {
    let files = corpus("bad");
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml"),
            "{}: only .yaml files belong in the corpus",
            path.display()
        );
        let text = fs::read_to_string(path).expect("readable corpus file");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: TEXT`", path.display()))
            .trim();
        assert!(!expect.is_empty(), "{}: empty expectation", path.display());
        match spec::load(path) {
            Ok(_) => failures.push(format!("{}: loaded, expected: {expect}", path.display())),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    !message.contains('\n'),
                    "{}: multi-line error: {message}",
                    path.display()
                );
                assert!(
                    message.starts_with(&path.display().to_string()),
                    "{}: error does not name the file: {message}",
                    path.display()
                );
                if !message.contains(expect) {
                    failures.push(format!(
                        "{}:\n  expected: {expect}\n  got:      {message}",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_good_manifest_loads() {
    let mut files = corpus("good");
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pod.yaml"));
    assert!(files.len() >= 4);
    for path in &files {
        if let Err(e) = spec::load(path) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_replicas_note_and_ignored_fields_are_one_line_each() {
    let path = corpus("good")
        .into_iter()
        .find(|p| p.ends_with("deployment-replicas.yaml"))
        .unwrap();
    let loaded = spec::load(&path).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("spec.replicas is 3"));
    assert!(loaded.warnings[1].contains("spec.template.spec.tolerations"));
    assert_eq!(
        loaded.pod.containers[0].resources.limits.memory_limit_bytes,
        Some(128_974_848)
    );
    assert_eq!(
        loaded.pod.containers[0].resources.limits.cpu_limit_millis,
        Some(1000)
    );
}

#[test]
fn the_multi_document_file_resolves_config_and_secrets() {
    let path = corpus("good")
        .into_iter()
        .find(|p| p.ends_with("multi-doc.yaml"))
        .unwrap();
    let loaded = spec::load(&path).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0]
            .ends_with("ignored (not run by a single-host supervisor): Service app (ClusterIP)")
    );
    let pod = loaded.pod;
    assert_eq!((pod.name.as_str(), pod.namespace.as_str()), ("app", "demo"));
    let rt = spec::RuntimeValues {
        pod_ips: vec!["10.88.0.2".into()],
        ..Default::default()
    };
    let env = pod.containers[0].env(&rt);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("LOG_LEVEL").as_deref(), Some("debug"));
    // POD_NAME is defined after GREETING, so it stays unexpanded there.
    assert_eq!(
        get("GREETING").as_deref(),
        Some("hello admin at $(POD_NAME)")
    );
    assert_eq!(get("POD_IP").as_deref(), Some("10.88.0.2"));
    let argv = pod.containers[0].argv(&env, &[], &[]);
    assert_eq!(
        argv[3],
        "echo \"hello admin at $(POD_NAME)\"; exec sleep 3600"
    );
    let spec::VolumeSource::Files { files, .. } = &pod.volume("config").unwrap().source else {
        panic!("config is a files volume")
    };
    assert_eq!(files[1].content, spec::FileContent::Data(vec![0, 1, 2]));
    assert_eq!(files[1].mode, 0o600);
    let spec::VolumeSource::Files { files, .. } = &pod.volume("secret").unwrap().source else {
        panic!("secret is a files volume")
    };
    let password = files
        .iter()
        .find(|f| f.path == Path::new("password"))
        .unwrap();
    assert_eq!(
        (&password.content, password.mode),
        (&spec::FileContent::Data(b"hunter2".to_vec()), 0o400)
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let err = spec::load(Path::new("/nonexistent/pod.yaml")).unwrap_err();
    assert!(matches!(err, ManifestError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/pod.yaml: cannot read:")
    );
}

/// Cutting a manifest anywhere, or deleting any one line, never
/// panics: every outcome is a pod or a typed error.
#[test]
fn truncated_and_mangled_manifests_never_panic() {
    let mut files = corpus("good");
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pod.yaml"));
    let mut outcomes = (0usize, 0usize);
    for path in &files {
        let text = fs::read_to_string(path).expect("readable corpus file");
        // Every line end and every fifth character (keeps the debug run short).
        let cuts = text
            .char_indices()
            .enumerate()
            .filter(|(n, (_, c))| n % 5 == 0 || *c == '\n')
            .map(|(_, (i, _))| i);
        for cut in cuts {
            match spec::load_str("cut.yaml", &text[..cut]) {
                Ok(_) => outcomes.0 += 1,
                Err(e) => {
                    assert!(!e.to_string().contains('\n'), "{e}");
                    outcomes.1 += 1;
                }
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let mangled: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            match spec::load_str("mangled.yaml", &mangled.join("\n")) {
                Ok(_) => outcomes.0 += 1,
                Err(_) => outcomes.1 += 1,
            }
        }
    }
    // Both outcomes occur: most cuts are refused, the full texts load.
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}
