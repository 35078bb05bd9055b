//! The unpacked image checked against other tools on the same input: the
//! layers this crate unpacked, stacked by a read-only overlay mount, must
//! match `umoci raw unpack` of the same OCI layout path by path (type,
//! mode, owner, size, content, device, link target, xattrs); and the
//! `docker-archive` that `skopeo copy` writes from it loads as the same layers.

use super::{Input, load};
use crate::digest::Digest;
use crate::reference::ImageReference;
use crate::store::tests::temp_store;
use crate::testing::{LayerTar, OciLayout, have_root, have_tool};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// security.capability v2: cap_net_bind_service, effective.
const CAPABILITY: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn busybox_layers() -> Vec<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    vec![
        LayerTar::new()
            .dir("bin", 0o755)
            .file("bin/busybox", 0o755, &busybox)
            .symlink("bin/sh", "busybox")
            .hardlink("bin/ls", "bin/busybox")
            .file_with("bin/su", 0o4755, (0, 0), &[], b"setuid")
            .file_with(
                "bin/ping",
                0o755,
                (0, 0),
                &[("security.capability", &CAPABILITY)],
                b"ping",
            )
            .dir("etc", 0o755)
            .file(
                "etc/passwd",
                0o644,
                b"root:x:0:0:root:/root:/bin/sh\nweb:x:101:101::/srv:/bin/sh\n",
            )
            .file("etc/group", 0o644, b"root:x:0:\nweb:x:101:\n")
            .file("etc/gone", 0o644, b"deleted above")
            .dir("srv", 0o755)
            .file_with("srv/index.html", 0o640, (101, 101), &[], b"<h1>hi</h1>")
            .dir("cache", 0o755)
            .file("cache/stale", 0o644, b"stale")
            .dir("dev", 0o755)
            .node("dev/null", tar::EntryType::Char, 1, 3)
            .node("run.fifo", tar::EntryType::Fifo, 0, 0)
            .finish(),
        LayerTar::new()
            .dir("etc", 0o755)
            .file("etc/.wh.gone", 0o644, b"")
            .dir("cache", 0o700)
            .file("cache/.wh..wh..opq", 0o644, b"")
            .file("cache/fresh", 0o600, b"fresh")
            .file_with("bin/su", 0o4750, (0, 101), &[], b"setuid v2")
            .finish(),
    ]
}

/// What is compared for each path of a tree.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    content: Option<Digest>,
    device: u64,
    link: Option<PathBuf>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Node>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = match meta.file_type() {
            t if t.is_dir() => "dir",
            t if t.is_symlink() => "symlink",
            t if t.is_file() => "file",
            t if t.is_char_device() => "char",
            t if t.is_block_device() => "block",
            t if t.is_fifo() => "fifo",
            _ => "other",
        };
        let mut names = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&path, &mut names).unwrap_or(0);
        let mut xattrs = BTreeMap::new();
        for name in names[..n].split(|&c| c == 0).filter(|s| !s.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 4096];
            let len = rustix::fs::lgetxattr(&path, name.as_str(), &mut value).unwrap();
            value.truncate(len);
            xattrs.insert(name, value);
        }
        into.insert(
            path.strip_prefix(root).unwrap().to_path_buf(),
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                owner: (meta.uid(), meta.gid()),
                content: (kind == "file").then(|| Digest::of(&std::fs::read(&path).unwrap())),
                device: meta.rdev(),
                link: std::fs::read_link(&path).ok(),
                xattrs,
            },
        );
        if kind == "dir" {
            walk(root, &path, into);
        }
    }
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    walk(root, root, &mut nodes);
    nodes
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn unpacked_layers_match_umoci_and_skopeo_docker_archive_loads_the_same() {
    if !have_root() || !have_tool("umoci") || !have_tool("skopeo") {
        return;
    }
    let (dir, store) = temp_store();
    let mut layout = OciLayout::new(&dir.path().join("layout"));
    let image = layout.image(
        &busybox_layers(),
        serde_json::json!({"Entrypoint": ["/bin/sh"]}),
        true,
    );
    layout.list(&image, Some("latest")).finish();

    let reference = dir.path().join("umoci");
    run(Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:latest", layout.dir.display()))
        .arg(&reference));

    let name = ImageReference::parse("localhost/busybox:test").unwrap();
    let record = load(&store, Input::Path(&layout.dir), Some(&name))
        .unwrap()
        .remove(0);
    let lowers: Vec<String> = record
        .layer_trees(&store)
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let merged = dir.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={}", lowers.join(":")))
        .arg(&merged));
    let ours = tree(&merged);
    run(Command::new("umount").arg(&merged));
    let theirs = tree(&reference);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (path, node) in &theirs {
        assert_eq!(&ours[path], node, "{}", path.display());
    }
    assert!(!ours.contains_key(Path::new("etc/gone")));
    assert!(!ours.contains_key(Path::new("cache/stale")));
    assert_eq!(
        ours[Path::new("bin/ping")].xattrs["security.capability"],
        CAPABILITY
    );

    let archive = dir.path().join("docker-archive.tar");
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:latest", layout.dir.display()))
        .arg(format!(
            "docker-archive:{}:localhost/busybox:skopeo",
            archive.display()
        )));
    let from_skopeo = load(&store, Input::Path(&archive), None).unwrap().remove(0);
    assert!(
        from_skopeo
            .names
            .contains(&"localhost/busybox:skopeo".to_string())
    );
    assert_eq!(from_skopeo.layers, record.layers);
    assert_eq!(from_skopeo.id, record.id);
}
