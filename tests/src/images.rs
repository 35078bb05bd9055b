//! The test images: one image store for the whole test run, shared by every
//! test binary (`<target>/podvisor-test-images`, filled under a flock), that
//! [`crate::pod::RunningPod`] hands to the supervisor as
//! `SUPERVISOR_IMAGE_DIR`. It holds [`BUSYBOX`], made from the host's
//! busybox-static, and images of this workspace's own binaries
//! ([`binary_image`]) with the libraries they load. Every image is tagged
//! (pull policy IfNotPresent) and imported with the `image` library, so no
//! test ever contacts a registry. Making the supervisor use the store is
//! `RunningPod`'s; what a test runs in an image is the test's.

use image::digest::Digest;
use image::reference::ImageReference;
use image::store::Store;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The busybox image every test pod runs: /bin/busybox (the host's
/// busybox-static) with a symlink per applet in /bin, /etc/passwd and
/// /etc/group with root and nobody (65534), /tmp (1777), /var/log, /root.
pub const BUSYBOX: &str = "localhost/podvisor-test/busybox:1";

/// The host's busybox, copied into [`BUSYBOX`].
const HOST_BUSYBOX: &str = "/bin/busybox";

/// The repository of the images of this workspace's binaries.
const BINARY_REPOSITORY: &str = "localhost/podvisor-test";

/// The shared store of the test run, with [`BUSYBOX`] in it (made on the
/// first call of the run, by whichever test binary comes first).
pub fn store_dir() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        ensure_image(BUSYBOX, busybox_rootfs);
        shared_store_dir()
    })
}

/// An image of one of this workspace's release binaries.
#[derive(Debug, Clone)]
pub struct BinaryImage {
    /// Its reference, `localhost/podvisor-test/NAME:<content hash>`.
    pub reference: String,
    /// The binary's path inside the image, for `command:`.
    pub path: String,
}

/// An image (in the shared store) holding the release binary `name`
/// ([`crate::bin`]) with the shared libraries and the loader `ldd` names,
/// each at its path on the host (so a command line reads the same in the
/// image and out of it). Its tag is a hash of those paths and files, so a
/// rebuilt binary gets a new image; older tags of it are removed.
pub fn binary_image(name: &str) -> BinaryImage {
    store_dir();
    let binary = crate::bin(name);
    let path = binary
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", binary.display()))
        .to_string();
    let mut files = vec![(path.clone(), binary.clone())];
    files.extend(libraries(&binary));
    let mut hashed = Vec::new();
    for (to, from) in &files {
        hashed.extend_from_slice(to.as_bytes());
        hashed
            .extend(std::fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())));
    }
    let tag = &Digest::of(&hashed).hex()[..16];
    let repository = format!("{BINARY_REPOSITORY}/{name}");
    let reference = format!("{repository}:{tag}");
    let store = ensure_image(&reference, |root| {
        skeleton(root);
        for (to, from) in &files {
            copy_into(root, to, from);
        }
    });
    remove_other_tags(&store, &repository, &reference);
    BinaryImage { reference, path }
}

/// `<target>/podvisor-test-images`: under the target dir, so that the test
/// VM (which sees the workspace, not the host's /var/tmp) shares it.
fn shared_store_dir() -> PathBuf {
    crate::target_dir().join("podvisor-test-images")
}

/// Makes sure the shared store holds `reference`, building its root file
/// system with `fill` (into an empty directory) and importing it when not;
/// under a flock, so that test binaries running at once make it once.
/// Returns the open store.
fn ensure_image(reference: &str, fill: impl FnOnce(&Path)) -> Store {
    let dir = shared_store_dir();
    let lock_path = dir.with_extension("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()));
    let store = Store::open(&dir).unwrap_or_else(|e| panic!("open the test image store: {e}"));
    if store.find(reference).is_ok() {
        return store;
    }
    let name = ImageReference::parse(reference).expect("test image names parse");
    let rootfs = tempfile::tempdir().expect("tempdir");
    // tempdir makes it 0700: an image's / must be traversable by any user.
    set_mode(rootfs.path(), 0o755);
    fill(rootfs.path());
    image::import::import_rootfs(&store, rootfs.path(), Some(&name))
        .unwrap_or_else(|e| panic!("import {reference} into {}: {e}", dir.display()));
    store
}

/// Removes every tag of `repository` but `keep` from the store.
fn remove_other_tags(store: &Store, repository: &str, keep: &str) {
    let prefix = format!("{repository}:");
    let images = store.images().expect("read the test image store");
    for name in images.iter().flat_map(|i| &i.names) {
        if name.starts_with(&prefix) && name != keep {
            store
                .remove(name)
                .unwrap_or_else(|e| panic!("remove the old test image {name}: {e}"));
        }
    }
}

/// The busybox image's tree: the skeleton, busybox and its applets.
fn busybox_rootfs(root: &Path) {
    let busybox = Path::new(HOST_BUSYBOX);
    assert!(
        busybox.is_file(),
        "{HOST_BUSYBOX} is missing: install busybox-static (apt-get install busybox-static); \
         every test pod runs the busybox image made from it"
    );
    skeleton(root);
    copy_into(root, HOST_BUSYBOX, busybox);
    for (to, from) in libraries(busybox) {
        copy_into(root, &to, &from);
    }
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("{HOST_BUSYBOX} --list: {e}"));
    assert!(out.status.success(), "{HOST_BUSYBOX} --list failed");
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let link = root.join("bin").join(applet);
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
}

/// What every test image has: /etc/passwd and /etc/group with root and
/// nobody, /tmp (1777), /root (0700), /var/log, and /bin, /dev, /proc, /sys.
fn skeleton(root: &Path) {
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/log", 0o755),
    ] {
        let path = root.join(dir);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        set_mode(&path, mode);
    }
    for (file, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
    ] {
        let path = root.join(file);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        set_mode(&path, 0o644);
    }
}

/// The shared libraries `elf` loads, with the loader, as (path in the
/// image, file on the host) pairs: the path `ldd` names, the file it
/// resolves to. None for a static binary.
fn libraries(elf: &Path) -> Vec<(String, PathBuf)> {
    let out = Command::new("ldd")
        .arg(elf)
        .output()
        .unwrap_or_else(|e| panic!("ldd {}: {e} (Debian package libc-bin)", elf.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Vec::new();
    }
    assert!(out.status.success(), "ldd {}: {text}", elf.display());
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            assert!(
                !line.contains("=> not found"),
                "ldd {}: {line}",
                elf.display()
            );
            // `libc.so.6 => /lib/.../libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2
            // (0x...)`; linux-vdso.so.1 has no file.
            let path = line.rsplit_once("=> ").map_or(line, |(_, path)| path);
            let path = path.split(" (").next()?;
            path.starts_with('/').then(|| {
                let file = std::fs::canonicalize(path)
                    .unwrap_or_else(|e| panic!("resolve {path} (ldd {}): {e}", elf.display()));
                (path.to_string(), file)
            })
        })
        .collect()
}

/// Copies the host file `from` to the absolute image path `to` under `root`
/// (mode 0755, parents made).
fn copy_into(root: &Path, to: &str, from: &Path) {
    let target = root.join(to.trim_start_matches('/'));
    let parent = target.parent().expect("an image path has a parent");
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    std::fs::copy(from, &target)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), target.display()));
    set_mode(&target, 0o755);
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
