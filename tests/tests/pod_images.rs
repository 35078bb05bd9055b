//! Pods running their images, as root on the real kernel: images built here
//! (FROM scratch + busybox-static, as `docker save` archives), loaded with
//! `supervisor image load` or served by a loopback `docker-registry`; the
//! image config as kubelet applies it, the rootfs's isolation and fresh
//! writable layer, many layers and shared layers, bad inputs (each a
//! reason in status, nothing half-written, the pod's other containers
//! untouched), and the article's two manifests as written.

use it::image_fixtures::{
    BUSYBOX, ImageStore, Layer, REGISTRY_PASSWORD, Registry, busybox_layer, docker_archive,
    docker_io_mirror, have_tool, pull_secret_yaml, sha256,
};
use it::pod::{RunOptions, RunningPod, example_cni_dir, unique_name};
use it::{http_get, signal, wait_until};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(
            Path::new(BUSYBOX).is_file(),
            "busybox-static at /bin/busybox",
        )
}

/// Registry tests also need docker-registry, skopeo and supervisor-pull.
fn registry_prerequisites() -> bool {
    prerequisites()
        && have_tool("docker-registry")
        && have_tool("skopeo")
        && it::prerequisite(
            it::bin_dir().join("supervisor-pull").is_file(),
            "supervisor-pull beside supervisor (cargo build --release --workspace)",
        )
}

/// A pod of `containers` (YAML list items, indented by four), with
/// `extra` pod spec lines (indented by two) and documents before it.
fn pod_manifest(name: &str, before: &str, extra: &str, containers: &str) -> String {
    format!(
        "{before}apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{extra}  containers:\n{containers}"
    )
}

/// Options pointing the pod at `store` (and `args`).
fn options(store: &ImageStore, args: &[&str]) -> RunOptions {
    RunOptions {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: store.env(),
        ..RunOptions::default()
    }
}

/// A temp dir and an image store in it.
fn temp_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path());
    (dir, store)
}

/// Starts a pod `<prefix>-<pid>-<n>` of `containers` on `store`.
fn start_pod(
    store: &ImageStore,
    prefix: &str,
    extra: &str,
    containers: &str,
    args: &[&str],
) -> RunningPod {
    let name = unique_name(prefix);
    RunningPod::start(
        &name,
        &pod_manifest(&name, "", extra, containers),
        options(store, args),
    )
}

/// Builds, archives and loads an image `name` of the busybox layer plus
/// `layers`, with `config`.
fn load_image(dir: &Path, store: &ImageStore, name: &str, layers: &[Vec<u8>], config: Value) {
    let mut all = vec![busybox_layer()];
    all.extend_from_slice(layers);
    let file = dir.join(format!("{}.tar", sha256(name.as_bytes())));
    store.load(&docker_archive(&file, name, &all, config));
}

/// The lines a container wrote (the CRI prefix removed).
fn log_lines(pod: &RunningPod, container: &str, restart: u32) -> Vec<String> {
    pod.log(container, restart)
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3).map(str::to_string))
        .collect()
}

/// Waits until the container's log has a line starting with `prefix`.
fn wait_log_line(pod: &RunningPod, container: &str, restart: u32, prefix: &str) -> String {
    wait_until(Duration::from_secs(20), || {
        log_lines(pod, container, restart)
            .into_iter()
            .find(|l| l.starts_with(prefix))
    })
    .unwrap_or_else(|| {
        panic!(
            "no line {prefix:?} in {container}'s log {restart}:\n{}\noutput:\n{}",
            pod.log(container, restart),
            pod.output()
        )
    })
}

fn waiting<'a>(status: &'a Value, container: &str) -> &'a Value {
    &RunningPod::container(status, container)["state"]["waiting"]
}

/// Waits until `container` waits with `reason`; returns its message.
fn wait_reason(pod: &RunningPod, container: &str, reason: &str, timeout: Duration) -> String {
    let status = pod.wait_status(timeout, &format!("{container}: {reason}"), |s| {
        waiting(s, container)["reason"] == reason
    });
    waiting(&status, container)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Nothing half-written in the store and no record named `names`.
fn assert_store_clean(store: &ImageStore, absent: &[&str]) {
    assert_eq!(store.half_written(), Vec::<PathBuf>::new(), "half-written");
    let names = store.names();
    for name in absent {
        assert!(
            !names.iter().any(|n| n == name),
            "{name} recorded: {names:?}"
        );
    }
}

const SLEEPER: &str = "    command: [/bin/sh, -c, \"exec sleep 3600\"]\n";

#[test]
fn command_and_args_against_entrypoint_and_cmd_in_all_four_cases() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    load_image(
        dir.path(),
        &store,
        "it.local/argv:1",
        &[],
        json!({"Entrypoint": ["/bin/echo", "entrypoint"], "Cmd": ["cmd-1", "cmd-2"]}),
    );
    let name = unique_name("argv");
    let image = "    image: it.local/argv:1\n";
    let manifest = pod_manifest(
        &name,
        "",
        "  restartPolicy: Never\n",
        &format!(
            "  - name: neither\n{image}  - name: command\n{image}    command: [/bin/echo, command]\n  - name: args\n{image}    args: [arg-1]\n  - name: both\n{image}    command: [/bin/echo, command]\n    args: [arg-1]\n"
        ),
    );
    let mut pod = RunningPod::start(&name, &manifest, options(&store, &[]));
    let exit = pod.wait_exit(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{}", pod.output());
    for (container, argv) in [
        ("neither", "entrypoint cmd-1 cmd-2"),
        ("command", "command"),
        ("args", "entrypoint arg-1"),
        ("both", "command arg-1"),
    ] {
        assert_eq!(
            log_lines(&pod, container, 0),
            [argv],
            "{container}: {}",
            pod.output()
        );
    }
    let status = pod.status().unwrap();
    let neither = RunningPod::container(&status, "neither");
    assert_eq!(neither["image"], "it.local/argv:1");
    assert!(
        neither["imageID"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "a loaded image has no repo digest: its ID: {neither:#}"
    );
}

#[test]
fn env_working_dir_and_user_come_from_the_image_as_kubelet_merges_them() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    load_image(
        dir.path(),
        &store,
        "it.local/config:1",
        &[],
        json!({
            "Env": ["PATH=/opt/image/bin:/bin", "FROM_IMAGE=image", "BOTH=image"],
            "WorkingDir": "/srv/app/missing",
            "User": "app",
        }),
    );
    load_image(dir.path(), &store, "it.local/bare:1", &[], json!({}));
    let script = r#"echo "PATH=$PATH"; echo "BOTH=$BOTH"; echo "FROM_IMAGE=$FROM_IMAGE"; echo "REF=$REF"; echo "PWD=$(pwd)"; echo "ID=$(id -u):$(id -g)"; exec sleep 3600"#;
    let containers = format!(
        "  - name: configured\n    image: it.local/config:1\n    command: [/bin/sh, -c, '{script}']\n    env:\n    - {{name: BOTH, value: container}}\n    - {{name: REF, value: \"$(FROM_IMAGE)-$(BOTH)\"}}\n  - name: bare\n    image: it.local/bare:1\n    command: [/bin/sh, -c, '{script}']\n"
    );
    let pod = start_pod(&store, "config", "", &containers, &[]);
    pod.wait_running(Duration::from_secs(20));
    wait_log_line(&pod, "configured", 0, "ID=");
    wait_log_line(&pod, "bare", 0, "ID=");
    assert_eq!(
        log_lines(&pod, "configured", 0),
        [
            "PATH=/opt/image/bin:/bin",
            "BOTH=container",
            "FROM_IMAGE=image",
            // $(VAR) expands from the container's env only: FROM_IMAGE is
            // the image's, so it stays as written.
            "REF=$(FROM_IMAGE)-container",
            "PWD=/srv/app/missing",
            "ID=1234:4321",
        ]
    );
    assert_eq!(
        log_lines(&pod, "bare", 0),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "BOTH=",
            "FROM_IMAGE=",
            "REF=",
            "PWD=/",
            "ID=0:0",
        ]
    );
    pod.stop_clean();
}

#[test]
fn config_errors_and_missing_images_hold_only_their_container() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    load_image(
        dir.path(),
        &store,
        "it.local/named-user:1",
        &[],
        json!({"User": "app", "Cmd": ["/bin/sleep", "3600"]}),
    );
    load_image(dir.path(), &store, "it.local/nothing:1", &[], json!({}));
    let containers = format!(
        "  - name: good\n    image: it.local/named-user:1\n  - name: nonroot\n    image: it.local/named-user:1\n    securityContext: {{runAsNonRoot: true}}\n  - name: nothing\n    image: it.local/nothing:1\n  - name: never\n    image: it.local/missing:1\n    imagePullPolicy: Never\n{SLEEPER}  - name: invalid\n    image: \"it.local/UPPER:1\"\n{SLEEPER}"
    );
    let pod = start_pod(&store, "holds", "", &containers, &[]);
    pod.wait_status(Duration::from_secs(20), "good running", |s| {
        RunningPod::container(s, "good")["state"]["running"].is_object()
    });
    let good_pid = pod.container_pid("good").expect("good's pid");
    let timeout = Duration::from_secs(20);
    let message = wait_reason(&pod, "nonroot", "CreateContainerConfigError", timeout);
    assert!(
        message.contains("runAsNonRoot") && message.contains("app"),
        "{message}"
    );
    let message = wait_reason(&pod, "nothing", "CreateContainerError", timeout);
    assert!(!message.is_empty());
    let message = wait_reason(&pod, "never", "ErrImageNeverPull", timeout);
    assert!(message.contains("it.local/missing:1"), "{message}");
    let message = wait_reason(&pod, "invalid", "InvalidImageName", timeout);
    assert!(message.contains("UPPER"), "{message}");
    // Past a resync (10 s) the holds stay, and good was never touched.
    std::thread::sleep(Duration::from_secs(11));
    let status = pod.status().unwrap();
    for (container, reason) in [
        ("nonroot", "CreateContainerConfigError"),
        ("nothing", "CreateContainerError"),
        ("never", "ErrImageNeverPull"),
        ("invalid", "InvalidImageName"),
    ] {
        assert_eq!(waiting(&status, container)["reason"], reason, "{status:#}");
    }
    assert_eq!(
        RunningPod::container(&status, "good")["restartCount"],
        0,
        "{status:#}"
    );
    assert_eq!(pod.container_pid("good"), Some(good_pid));
    assert_store_clean(&store, &["it.local/missing:1"]);
    pod.stop_clean();
}

#[test]
fn loading_a_file_that_is_not_an_image_fails_and_stores_nothing() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not an image archive\n".repeat(100)).unwrap();
    let mut not_image = Layer::new();
    not_image.file("hello.txt", 0o644, b"a tar, but no image");
    let plain_tar = dir.path().join("plain.tar");
    std::fs::write(&plain_tar, not_image.finish()).unwrap();
    for file in [&junk, &plain_tar] {
        let output = store.image_command(&["load", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(file.to_str().unwrap()) && stderr.contains("not an image archive"),
            "{stderr}"
        );
    }
    assert_store_clean(&store, &[]);
    assert_eq!(store.names(), Vec::<String>::new());
    assert_eq!(store.layer_count(), 0);
}

#[test]
fn the_image_rootfs_hides_the_host_and_a_restart_gets_a_fresh_writable_layer() {
    if !prerequisites() {
        return;
    }
    assert!(
        Path::new("/etc/shadow").exists(),
        "the host has /etc/shadow"
    );
    std::fs::create_dir_all("/var/log/pods").unwrap();
    let (dir, store) = temp_store();
    load_image(dir.path(), &store, "it.local/plain:1", &[], json!({}));
    let script = r#"if test -e /etc/shadow; then echo shadow=visible; else echo shadow=absent; fi; if test -e /var/log/pods; then echo pods=visible; else echo pods=absent; fi; if test -e /written; then echo written=left-over; else echo written=fresh; fi; echo mine > /written; echo passwd=$(cat /etc/passwd | tail -n 1); sleep 1; exit 1"#;
    let containers = format!(
        "  - name: probe\n    image: it.local/plain:1\n    command: [/bin/sh, -c, '{script}']\n"
    );
    let pod = start_pod(
        &store,
        "isolation",
        "",
        &containers,
        &["--backoff-initial", "1s"],
    );
    for restart in [0, 1] {
        wait_log_line(&pod, "probe", restart, "passwd=");
        assert_eq!(
            log_lines(&pod, "probe", restart),
            [
                "shadow=absent",
                "pods=absent",
                "written=fresh",
                "passwd=app:x:1234:4321:app:/home/app:/bin/sh",
            ],
            "instance {restart}"
        );
    }
    pod.stop_clean();
}

/// A layer adding `/layers/<n>`.
fn numbered_layer(n: usize) -> Vec<u8> {
    Layer::new()
        .dir("layers", 0o755)
        .file(&format!("layers/{n}"), 0o644, format!("{n}\n").as_bytes())
        .finish()
}

#[test]
fn an_image_of_150_layers_runs_with_whiteouts_opaque_dirs_hard_links_and_setuid() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    let mut layers = vec![
        Layer::new()
            .dir("data", 0o755)
            .file("data/keep", 0o644, b"keep")
            .file("data/gone", 0o644, b"gone")
            .dir("opq", 0o755)
            .file("opq/a", 0o644, b"a")
            .file("opq/b", 0o644, b"b")
            .dir("hard", 0o755)
            .file("hard/orig", 0o644, b"linked")
            .hardlink("hard/link", "hard/orig")
            .dir("usr", 0o755)
            .dir("usr/bin", 0o755)
            .file("usr/bin/suid", 0o4755, b"#!/bin/sh\n")
            .finish(),
        Layer::new()
            .dir("data", 0o755)
            .whiteout("data/gone")
            .dir("opq", 0o755)
            .opaque("opq")
            .file("opq/c", 0o644, b"c")
            .finish(),
    ];
    layers.extend((0..147).map(numbered_layer));
    load_image(dir.path(), &store, "it.local/deep:1", &layers, json!({}));
    assert_eq!(store.layer_count(), 150);
    let script = r#"echo first=$(cat /layers/0) last=$(cat /layers/146); echo count=$(ls /layers | wc -l); echo data=$(ls /data); echo opq=$(ls /opq); echo hard=$(stat -c %h /hard/link):$(cat /hard/link); echo suid=$(stat -c %a /usr/bin/suid); exec sleep 3600"#;
    let containers = format!(
        "  - name: deep\n    image: it.local/deep:1\n    command: [/bin/sh, -c, '{script}']\n"
    );
    let pod = start_pod(&store, "deep", "", &containers, &[]);
    pod.wait_running(Duration::from_secs(30));
    wait_log_line(&pod, "deep", 0, "suid=");
    assert_eq!(
        log_lines(&pod, "deep", 0),
        [
            "first=0 last=146",
            "count=147",
            "data=keep",
            "opq=c",
            "hard=2:linked",
            "suid=4755",
        ],
        "{}",
        pod.output()
    );
    pod.stop_clean();
}

#[test]
fn twenty_containers_of_one_image_share_its_layers() {
    if !prerequisites() {
        return;
    }
    let (dir, store) = temp_store();
    load_image(
        dir.path(),
        &store,
        "it.local/shared:1",
        &[numbered_layer(1), numbered_layer(2)],
        json!({"Cmd": ["/bin/sleep", "3600"]}),
    );
    assert_eq!(store.layer_count(), 3);
    let containers: String = (0..10)
        .map(|i| format!("  - name: c{i}\n    image: it.local/shared:1\n"))
        .collect();
    let pods: Vec<RunningPod> = (0..2)
        .map(|_| {
            let name = unique_name("shared");
            RunningPod::start(
                &name,
                &pod_manifest(&name, "", "", &containers),
                options(&store, &[]),
            )
        })
        .collect();
    for pod in &pods {
        pod.wait_running(Duration::from_secs(60));
    }
    assert_eq!(
        store.layer_count(),
        3,
        "20 containers, one copy of each layer"
    );
    // Every container's root is an overlay over the store's layers.
    let layers_dir = store.root.join("layers").display().to_string();
    for pod in &pods {
        for i in 0..10 {
            let pid = pod.container_pid(&format!("c{i}")).expect("container pid");
            let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
            let root = mounts
                .lines()
                .find(|l| l.split(' ').nth(4) == Some("/"))
                .expect("a root mount");
            assert!(
                root.contains(" - overlay ") && root.contains(&layers_dir),
                "{root}"
            );
        }
    }
    for pod in pods {
        pod.stop_clean();
    }
    assert_store_clean(&store, &[]);
}

/// A registry test's parts: a temp dir, a store, the base image archive.
struct RegistryCase {
    dir: tempfile::TempDir,
    store: ImageStore,
    base: PathBuf,
}

impl RegistryCase {
    fn new() -> RegistryCase {
        let (dir, store) = temp_store();
        let base = docker_archive(
            &dir.path().join("base.tar"),
            "it.local/base:1",
            &[busybox_layer(), numbered_layer(1)],
            json!({"Cmd": ["/bin/sleep", "3600"]}),
        );
        RegistryCase { dir, store, base }
    }

    /// An archive of the busybox layer plus `layer`.
    fn archive_with(&self, file: &str, layer: Vec<u8>) -> PathBuf {
        docker_archive(
            &self.dir.path().join(file),
            "it.local/other:1",
            &[busybox_layer(), layer],
            json!({"Cmd": ["/bin/sleep", "3600"]}),
        )
    }
}

/// Waits for `container`'s ErrImagePull, then its ImagePullBackOff;
/// returns the ErrImagePull message (which names `image`).
fn wait_failed_pull(pod: &RunningPod, container: &str, image: &str) -> String {
    let message = wait_reason(pod, container, "ErrImagePull", Duration::from_secs(30));
    assert!(message.contains(image), "{container}: {message}");
    let back_off = wait_reason(pod, container, "ImagePullBackOff", Duration::from_secs(30));
    assert!(back_off.contains(image), "{container}: {back_off}");
    message
}

/// A pod whose `good` container runs the pulled base image and whose other
/// containers run `images` (name, image).
fn pod_with_good_container(
    name: &str,
    registry: &str,
    before: &str,
    extra: &str,
    images: &[(&str, String)],
) -> String {
    let mut containers = format!("  - name: good\n    image: {registry}/it/base:1\n");
    for (container, image) in images {
        containers.push_str(&format!("  - name: {container}\n    image: {image}\n"));
    }
    pod_manifest(name, before, extra, &containers)
}

/// Waits until `good` runs; returns its pid.
fn good_pid(pod: &RunningPod) -> i32 {
    pod.wait_status(Duration::from_secs(30), "good running", |s| {
        RunningPod::container(s, "good")["state"]["running"].is_object()
    });
    pod.container_pid("good").expect("good's pid")
}

#[test]
fn an_unknown_image_and_an_unknown_tag_are_err_image_pull_then_back_off() {
    if !registry_prerequisites() {
        return;
    }
    let case = RegistryCase::new();
    let registry = Registry::start(case.dir.path(), None);
    registry.push(&case.base, "it/base:1", None);
    let address = &registry.address;
    let name = unique_name("unknown");
    let manifest = pod_with_good_container(
        &name,
        address,
        "",
        "",
        &[
            ("no-image", format!("{address}/it/nope:1")),
            ("no-tag", format!("{address}/it/base:nope")),
        ],
    );
    let pod = RunningPod::start(&name, &manifest, options(&case.store, &[]));
    let pid = good_pid(&pod);
    let status = pod.status().unwrap();
    let good = RunningPod::container(&status, "good");
    assert_eq!(good["image"], format!("{address}/it/base:1"));
    assert!(
        good["imageID"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("{address}/it/base@sha256:"))),
        "{good:#}"
    );
    wait_failed_pull(&pod, "no-image", &format!("{address}/it/nope:1"));
    wait_failed_pull(&pod, "no-tag", &format!("{address}/it/base:nope"));
    assert_eq!(pod.container_pid("good"), Some(pid));
    assert_store_clean(
        &case.store,
        &[
            &format!("{address}/it/nope:1"),
            &format!("{address}/it/base:nope"),
        ],
    );
    pod.stop_clean();
}

#[test]
fn tampered_truncated_and_escaping_layers_are_refused_and_leave_nothing() {
    if !registry_prerequisites() {
        return;
    }
    let case = RegistryCase::new();
    let registry = Registry::start(case.dir.path(), None);
    registry.push(&case.base, "it/base:1", None);
    let escape_name = format!("podvisor-escape-{}", std::process::id());
    let bad = [
        (
            "tampered",
            Layer::new().file("tampered", 0o644, b"original").finish(),
        ),
        ("truncated", numbered_layer(7)),
        (
            "dotdot",
            Layer::new()
                .file(&format!("../../../../../tmp/{escape_name}"), 0o644, b"out")
                .finish(),
        ),
        (
            "symlink",
            Layer::new()
                .symlink("out", "/tmp")
                .file(&format!("out/{escape_name}"), 0o644, b"out")
                .finish(),
        ),
    ];
    for (repo, layer) in bad {
        registry.push(
            &case.archive_with(&format!("{repo}.tar"), layer),
            &format!("it/{repo}:1"),
            None,
        );
    }
    // Replace the tampered image's layer by another valid layer (the
    // registry serves it under the old digest) and cut the truncated
    // one's in half.
    let tampered = registry.blob_file(registry.layer_digests("it/tampered", "1").last().unwrap());
    let other = Layer::new().file("tampered", 0o644, b"TAMPERED").finish();
    std::fs::write(&tampered, gzip(&other)).unwrap();
    let truncated = registry.blob_file(registry.layer_digests("it/truncated", "1").last().unwrap());
    let data = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();

    let address = &registry.address;
    let images: Vec<(&str, String)> = ["tampered", "truncated", "dotdot", "symlink"]
        .into_iter()
        .map(|repo| (repo, format!("{address}/it/{repo}:1")))
        .collect();
    let name = unique_name("badlayers");
    let manifest = pod_with_good_container(&name, address, "", "", &images);
    let pod = RunningPod::start(&name, &manifest, options(&case.store, &[]));
    let pid = good_pid(&pod);
    let layers_of_base = case.store.layer_count();
    let mut messages = Vec::new();
    for (container, image) in &images {
        messages.push(wait_failed_pull(&pod, container, image));
    }
    assert!(
        messages[0].to_lowercase().contains("digest"),
        "tampered: {}",
        messages[0]
    );
    assert!(!messages[1].is_empty());
    assert!(
        messages[2].contains(".."),
        "dotdot: the message names the entry: {}",
        messages[2]
    );
    assert!(messages[3].contains("out"), "symlink: {}", messages[3]);
    assert!(
        !Path::new("/tmp").join(&escape_name).exists(),
        "a layer wrote outside"
    );
    assert_eq!(pod.container_pid("good"), Some(pid));
    assert_eq!(
        case.store.layer_count(),
        layers_of_base,
        "no layer of a refused image kept"
    );
    let names: Vec<&str> = images.iter().map(|(_, image)| image.as_str()).collect();
    assert_store_clean(&case.store, &names);
    pod.stop_clean();
}

#[test]
fn a_registry_stopped_in_the_middle_of_a_pull_leaves_nothing_and_the_pod_untouched() {
    if !registry_prerequisites() {
        return;
    }
    let case = RegistryCase::new();
    let mut registry = Registry::start(case.dir.path(), None);
    registry.push(&case.base, "it/base:1", None);
    let big = Layer::new()
        .file("big", 0o644, &it::image_fixtures::incompressible(8 << 20))
        .finish();
    registry.push(&case.archive_with("big.tar", big), "it/big:1", None);
    // The big image through a proxy sending 2 MB/s: its layer takes 4 s.
    let proxy = it::image_fixtures::SlowProxy::start(&registry.address, 2 << 20);
    let address = &registry.address;
    let big_image = format!("{}/it/big:1", proxy.address);
    let name = unique_name("midpull");
    let manifest = pod_with_good_container(&name, address, "", "", &[("big", big_image.clone())]);
    let pod = RunningPod::start(&name, &manifest, options(&case.store, &[]));
    let pid = good_pid(&pod);
    let layers_of_base = case.store.layer_count();
    let sent = &proxy.sent;
    let midway = wait_until(Duration::from_secs(30), || {
        (sent.load(std::sync::atomic::Ordering::SeqCst) > 2 << 20).then_some(())
    });
    assert!(
        midway.is_some(),
        "the big layer never downloaded: {}",
        pod.output()
    );
    registry.stop();
    proxy.cut();
    let message = wait_failed_pull(&pod, "big", &big_image);
    assert!(!message.is_empty());
    assert_eq!(case.store.layer_count(), layers_of_base);
    assert_store_clean(&case.store, &[&big_image]);
    assert_eq!(pod.container_pid("good"), Some(pid));
    pod.stop_clean();
}

#[test]
fn a_registry_wanting_credentials_takes_the_pods_image_pull_secret() {
    if !registry_prerequisites() {
        return;
    }
    let case = RegistryCase::new();
    let user = "ituser";
    let registry = Registry::start(case.dir.path(), Some(user));
    registry.push(&case.base, "it/private:1", Some(user));
    let address = &registry.address;
    let image = format!("{address}/it/private:1");
    // Always: every start asks the registry, so a copy another pod pulled
    // with the right secret is not used without credentials.
    let containers =
        format!("  - name: private\n    image: {image}\n    imagePullPolicy: Always\n");
    let pods: Vec<(&str, RunningPod)> = [
        ("none", "", ""),
        (
            "wrong",
            "wrong-password",
            "  imagePullSecrets:\n  - name: regcred\n",
        ),
        (
            "right",
            REGISTRY_PASSWORD,
            "  imagePullSecrets:\n  - name: regcred\n",
        ),
    ]
    .into_iter()
    .map(|(case_name, password, extra)| {
        let name = unique_name(&format!("auth-{case_name}"));
        let secret = if extra.is_empty() {
            String::new()
        } else {
            pull_secret_yaml("regcred", address, user, password) + "---\n"
        };
        let manifest = pod_manifest(&name, &secret, extra, &containers);
        (
            case_name,
            RunningPod::start(&name, &manifest, options(&case.store, &[])),
        )
    })
    .collect();
    for (case_name, pod) in &pods {
        if *case_name == "right" {
            let status = pod.wait_running(Duration::from_secs(30));
            assert_eq!(
                RunningPod::container(&status, "private")["image"],
                image.as_str()
            );
        } else {
            let message = wait_failed_pull(pod, "private", &image);
            let lower = message.to_lowercase();
            assert!(
                ["401", "unauthorized", "authentication", "credentials"]
                    .iter()
                    .any(|word| lower.contains(word)),
                "{case_name}: {message}"
            );
        }
    }
    for (_, pod) in pods {
        pod.stop_clean();
    }
    assert_store_clean(&case.store, &[]);
}

/// The article's images: `alpine:3.2` loaded here; `nginx:latest` (an
/// nginx-like busybox httpd serving /usr/share/nginx/html on port 80 and
/// logging to /var/log/nginx/access.log) and `busybox` in the registry as
/// docker.io's mirror.
fn article_images(dir: &Path, store: &ImageStore, registry: &Registry) {
    let alpine_release = Layer::new()
        .dir("etc", 0o755)
        .file("etc/alpine-release", 0o644, b"3.2.3\n")
        .finish();
    load_image(
        dir,
        store,
        "alpine:3.2",
        &[alpine_release],
        json!({"Cmd": ["/bin/sh"]}),
    );
    let nginx_dirs = Layer::new()
        .dir("usr", 0o755)
        .dir("usr/share", 0o755)
        .dir("usr/share/nginx", 0o755)
        .dir("usr/share/nginx/html", 0o755)
        .file(
            "usr/share/nginx/html/index.html",
            0o644,
            b"nginx-like default page\n",
        )
        .dir("var", 0o755)
        .dir("var/log", 0o755)
        .dir("var/log/nginx", 0o755)
        .finish();
    let nginx = docker_archive(
        &dir.join("nginx.tar"),
        "nginx:latest",
        &[busybox_layer(), nginx_dirs],
        json!({
            "Entrypoint": ["/bin/sh", "-c", "exec httpd -f -v -p 80 -h /usr/share/nginx/html 2>>/var/log/nginx/access.log"],
            "ExposedPorts": {"80/tcp": {}},
        }),
    );
    registry.push(&nginx, "library/nginx:latest", None);
    let busybox = docker_archive(
        &dir.join("busybox.tar"),
        "busybox:latest",
        &[busybox_layer()],
        json!({"Cmd": ["sh"]}),
    );
    registry.push(&busybox, "library/busybox:latest", None);
}

#[test]
fn the_articles_two_manifests_run_as_written_from_images() {
    if !registry_prerequisites() {
        return;
    }
    it::require!(
        Path::new("/usr/lib/cni/bridge").is_file() || Path::new("/opt/cni/bin/bridge").is_file(),
        "CNI plugins (containernetworking-plugins)"
    );
    let (dir, store) = temp_store();
    let registry = Registry::start(dir.path(), None);
    article_images(dir.path(), &store, &registry);
    let mirror = docker_io_mirror(&dir.path().join("registries.d"), &registry.address);
    // The mirror is configured before anything runs: docker.io's hosts.toml
    // names our registry, and a pull through it answers from it. Any HTTPS
    // request (docker.io itself) would go to a proxy that is not there.
    let hosts = std::fs::read_to_string(mirror.join("docker.io/hosts.toml")).unwrap();
    assert!(
        hosts.contains(&format!("[host.\"http://{}\"]", registry.address)),
        "{hosts}"
    );
    let no_network = [
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("https_proxy", "http://127.0.0.1:9"),
    ];
    let check_store = ImageStore::new(&dir.path().join("check"));
    let result = dir.path().join("check-result.json");
    let output = std::process::Command::new(it::bin("supervisor-pull"))
        .arg("--image-dir")
        .arg(&check_store.root)
        .arg("--registry-config-dir")
        .arg(&mirror)
        .args(["--progress", "none", "--result"])
        .arg(&result)
        .arg("busybox")
        .envs(no_network)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pull through the mirror: {output:?}"
    );
    let pulled: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(
        pulled["image"], "docker.io/library/busybox:latest",
        "{pulled:#}"
    );
    let run_options = |cni: bool| RunOptions {
        cni_conf_dir: cni.then(example_cni_dir),
        args: vec![
            "--registry-config-dir".to_string(),
            mirror.display().to_string(),
        ],
        env: store
            .env()
            .into_iter()
            .chain(
                no_network
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .collect(),
    };

    // The first: alpine:3.2, IfNotPresent, the stored copy.
    let alpine = RunningPod::start("alpine-deployment", ARTICLE_ALPINE, run_options(false));
    let status = alpine.wait_running(Duration::from_secs(30));
    let container = RunningPod::container(&status, "alpine");
    assert_eq!(container["image"], "docker.io/library/alpine:3.2");
    let pid = alpine.container_pid("alpine").expect("alpine's pid");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/etc/alpine-release")).unwrap(),
        "3.2.3\n",
        "the container's root is the image"
    );
    // `sh -c "sleep 60m"` as PID 1 ignores SIGTERM: the manifest's default
    // grace period (30 s) runs out, as on a cluster.
    alpine.stop_clean_within(Duration::from_secs(45));

    // The second: nginx:latest and busybox (Always) through the mirror.
    let nginx = RunningPod::start("nginx-deployment", ARTICLE_NGINX, run_options(true));
    let status = nginx.wait_running(Duration::from_secs(60));
    for (container, image) in [
        ("nginx", "docker.io/library/nginx:latest"),
        (
            "nginx-sidecar-container",
            "docker.io/library/busybox:latest",
        ),
    ] {
        let c = RunningPod::container(&status, container);
        assert_eq!(c["image"], image);
        assert!(
            c["imageID"].as_str().is_some_and(
                |id| id.starts_with(&format!("{}@sha256:", image.trim_end_matches(":latest")))
            ),
            "{c:#}"
        );
    }
    let ip = status["status"]["podIP"]
        .as_str()
        .expect("podIP")
        .to_string();
    let page = wait_until(Duration::from_secs(20), || http_get(&ip, 80)).expect("the page");
    assert!(page.contains("Kano/鹿乃"), "the ConfigMap's page: {page}");
    // Its LoadBalancer Service: port 80 of the host, as k3s's ServiceLB.
    let page = wait_until(Duration::from_secs(30), || http_get("127.0.0.1", 80))
        .unwrap_or_else(|| panic!("the Service's port 80 on 127.0.0.1:\n{}", nginx.output()));
    assert!(page.contains("Kano/鹿乃"), "through the Service: {page}");
    // The sidecar cats the shared access log every 30 s.
    let log = wait_until(Duration::from_secs(45), || {
        let log = nginx.log("nginx-sidecar-container", 0);
        log.contains("response:200").then_some(log)
    })
    .unwrap_or_else(|| panic!("the sidecar never read the access log:\n{}", nginx.output()));
    assert!(
        log.contains(&ip.rsplit_once('.').unwrap().0.to_string()),
        "{log}"
    );
    // Killing nginx restarts it; the pod keeps its IP.
    let nginx_pid = nginx.container_pid("nginx").expect("nginx's pid");
    signal(nginx_pid, Signal::SIGKILL);
    let status = nginx.wait_status(Duration::from_secs(30), "nginx restarted", |s| {
        let c = RunningPod::container(s, "nginx");
        c["restartCount"].as_u64() >= Some(1) && c["state"]["running"].is_object()
    });
    assert_eq!(status["status"]["podIP"], ip.as_str());
    let page = wait_until(Duration::from_secs(20), || http_get(&ip, 80)).expect("the page again");
    assert!(page.contains("Kano/鹿乃"), "{page}");
    // Neither shell (nginx's sh -c exec'd httpd, the sidecar's loop) acts
    // on SIGTERM as PID 1: the 30 s grace period runs out.
    nginx.stop_clean_within(Duration::from_secs(45));
}

/// `data` compressed by the `gzip` command.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    output.stdout
}

/// The article's first manifest, as written.
const ARTICLE_ALPINE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: alpine-deployment
spec:
  selector:
    matchLabels:
      app: alpine
  replicas: 1
  template:
    metadata:
      labels:
        app: alpine
    spec:
      containers:
      - image: alpine:3.2
        command:
          - /bin/sh
          - "-c"
          - "sleep 60m"
        imagePullPolicy: IfNotPresent
        name: alpine
        resources:
          requests:
            memory: 50Mi
          limits:
            memory: 100Mi
      nodeSelector:
        kubernetes.io/hostname: "ubuntu-nested-3"
      restartPolicy: Always
"#;

/// The article's second manifest (ConfigMap, Deployment, Service), as written.
const ARTICLE_NGINX: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: nginx-index
data:
  index.html: "<html><head><title>Kano</title></head><body>Kano/鹿乃</body></html>"

---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  selector:
    matchLabels:
      app: nginx
  replicas: 1
  template:
    metadata:
      labels:
        app: nginx
    spec:
      volumes:
        - name: shared-logs
          emptyDir: {}
        - name: nginx-index-cm
          configMap:
            name: nginx-index
      containers:
      - name: nginx
        image: nginx:latest
        ports:
        - containerPort: 80
        volumeMounts:
          - name: shared-logs
            mountPath: /var/log/nginx
          - name: nginx-index-cm
            mountPath: /usr/share/nginx/html/
        resources:
          requests:
            memory: 50Mi
          limits:
            memory: 100Mi

      - name: nginx-sidecar-container
        image: busybox
        command: ["sh","-c","while true; do cat /var/log/nginx/access.log; sleep 30; done"]
        volumeMounts:
          - name: shared-logs
            mountPath: /var/log/nginx
            readOnly: true

      nodeSelector:
        kubernetes.io/hostname: "ubuntu-nested-3"
      restartPolicy: Always
---
apiVersion: v1
kind: Service
metadata:
  name: nginx-deployment
  namespace: default
  labels:
    app: nginx
spec:
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: nginx
  type: LoadBalancer
"#;
