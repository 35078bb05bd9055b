//! Black-box tests of `supervisor image load|import|ls|rm|prune|pull` and
//! of `supervisor-pull` on the release binaries: a store in a temporary
//! directory, a docker-save archive made here with tar, a registry on
//! 127.0.0.1 (Debian's `docker-registry`, seeded with `skopeo copy`,
//! stopped by PID), the `--result` file, and SIGTERM during a pull. Run as
//! root: `cargo build --release --workspace && cargo test -p it --test images`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use it::{bin, have_command, require, require_root, wait_until};

/// `supervisor image ARGS` against the store `store`.
fn image(store: &Path, args: &[&str]) -> Output {
    Command::new(bin("supervisor"))
        .arg("image")
        .arg("--image-dir")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A root file system with busybox-static as /bin/sh.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    root
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `docker save` archive (old layout) of `root` as one layer, named `name`.
fn docker_archive(dir: &Path, root: &Path, name: &str) -> PathBuf {
    let work = dir.join("archive");
    std::fs::create_dir_all(work.join("layer")).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(work.join("layer/layer.tar"))
        .arg("."));
    let sum = run(Command::new("sha256sum").arg(work.join("layer/layer.tar")));
    let diff_id = format!("sha256:{}", sum.split_whitespace().next().unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    std::fs::write(work.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [name], "Layers": ["layer/layer.tar"],
    }]);
    std::fs::write(work.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.join("image.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&work)
        .arg("-cf")
        .arg(&archive)
        .args(["manifest.json", "config.json", "layer/layer.tar"]));
    archive
}

#[test]
fn load_import_ls_rm_prune() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("images");
    let root = rootfs(dir.path());
    let id = stdout(&image(
        &store,
        &[
            "import",
            "--ref",
            "example.com/rootfs:1",
            root.to_str().unwrap(),
        ],
    ));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let archive = docker_archive(dir.path(), &root, "busybox:saved");
    let loaded = stdout(&image(&store, &["load", archive.to_str().unwrap()]));
    assert_eq!(loaded, "Loaded image: docker.io/library/busybox:saved\n");

    let table = stdout(&image(&store, &["ls"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{table}");
    assert!(table.contains("example.com/rootfs"), "{table}");
    assert!(
        table.contains("docker.io/library/busybox   saved"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&image(&store, &["ls", "-o", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);

    let removed = stdout(&image(&store, &["rm", "busybox:saved"]));
    assert!(
        removed.starts_with("Untagged: docker.io/library/busybox:saved\nDeleted: sha256:"),
        "{removed}"
    );
    let missing = image(&store, &["rm", "busybox:saved"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no such image: busybox:saved"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    // A nameless import is what prune removes.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("file"), "x").unwrap();
    stdout(&image(&store, &["import", other.to_str().unwrap()]));
    let pruned = stdout(&image(&store, &["prune"]));
    assert!(pruned.starts_with("Deleted: sha256:"), "{pruned}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&image(&store, &["ls", "-o", "json"]))).unwrap();
    assert_eq!(
        json[0]["names"],
        serde_json::json!(["example.com/rootfs:1"])
    );
}

/// A registry on 127.0.0.1, killed by PID when dropped.
struct Registry {
    child: Child,
    address: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &Path) -> Registry {
    let address = format!("127.0.0.1:{}", free_loopback_port());
    let config = dir.join("registry.yml");
    let yaml = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
        dir.join("registry").display()
    );
    std::fs::write(&config, yaml).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry { child, address };
    wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&registry.address).ok()
    })
    .expect("docker-registry listens");
    registry
}

fn read_result(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn pull_from_a_loopback_registry_and_through_a_mirror() {
    require_root!();
    require!(
        have_command("docker-registry"),
        "docker-registry (Debian package)"
    );
    require!(have_command("skopeo"), "skopeo");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("images");
    let registry = start_registry(dir.path());
    let archive = docker_archive(dir.path(), &rootfs(dir.path()), "busybox:1");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{}/library/busybox:1", registry.address),
    ]));
    // docker.io goes to the loopback registry (mirror and server both),
    // configured before any docker.io name is pulled.
    let hosts = dir.path().join("registries.d");
    std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
    std::fs::write(
        hosts.join("docker.io/hosts.toml"),
        format!(
            "server = \"http://{0}\"\n[host.\"http://{0}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            registry.address
        ),
    )
    .unwrap();
    let hosts_flag = hosts.to_str().unwrap();

    let pulled = image(
        &store,
        &["pull", "--registry-config-dir", hosts_flag, "busybox:1"],
    );
    let progress = String::from_utf8_lossy(&pulled.stderr);
    assert!(pulled.status.success(), "{progress}");
    let lines: Vec<&str> = progress.lines().collect();
    assert_eq!(
        lines[0], "Pulling docker.io/library/busybox:1",
        "{progress}"
    );
    assert!(lines[1].ends_with(": Pull complete"), "{progress}");
    assert!(
        lines[2].starts_with("Pulled docker.io/library/busybox:1: sha256:"),
        "{progress}"
    );
    assert_eq!(lines.len(), 3, "plain progress is a few lines: {progress}");

    let result = dir.path().join("result.json");
    let again = Command::new(bin("supervisor-pull"))
        .arg("--image-dir")
        .arg(&store)
        .args([
            "--registry-config-dir",
            hosts_flag,
            "--progress",
            "none",
            "--result",
        ])
        .arg(&result)
        .arg("busybox:1")
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let result = read_result(&result);
    assert_eq!(result["image"], "docker.io/library/busybox:1");
    assert!(result["id"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        result["image_ref"]
            .as_str()
            .unwrap()
            .starts_with("docker.io/library/busybox@sha256:"),
        "{result}"
    );
    let table = stdout(&image(&store, &["ls"]));
    assert!(table.contains("docker.io/library/busybox   1"), "{table}");
}

#[test]
fn a_failed_pull_writes_err_image_pull_and_sigterm_stops_a_pull() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("images");
    let result = dir.path().join("result.json");
    let closed = format!("127.0.0.1:{}/x:1", free_loopback_port());
    let output = Command::new(bin("supervisor-pull"))
        .arg("--image-dir")
        .arg(&store)
        .arg("--result")
        .arg(&result)
        .arg(&closed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("supervisor-pull: pulling {closed}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    let failure = read_result(&result);
    assert_eq!(failure["error"]["reason"], "ErrImagePull");
    assert!(
        failure["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pulling {closed}: ")),
        "{failure}"
    );

    let invalid = Command::new(bin("supervisor-pull"))
        .arg("--image-dir")
        .arg(&store)
        .arg("--result")
        .arg(&result)
        .arg("UPPER/x")
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    assert_eq!(read_result(&result)["error"]["reason"], "InvalidImageName");

    let via_image = image(&store, &["pull", &closed]);
    assert_eq!(via_image.status.code(), Some(1));

    // A registry that accepts and never answers: the pull waits until SIGTERM.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = format!("{}/x:1", silent.local_addr().unwrap());
    let mut child = Command::new(bin("supervisor-pull"))
        .arg("--image-dir")
        .arg(&store)
        .arg("--result")
        .arg(&result)
        .arg(&hung)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_connection, _) = silent.accept().unwrap();
    it::signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let stopped = read_result(&result);
    assert_eq!(stopped["error"]["reason"], "ErrImagePull");
    assert_eq!(
        stopped["error"]["message"],
        format!("pulling {hung}: stopped by SIGTERM")
    );
}
