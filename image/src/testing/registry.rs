//! A real registry for tests: Debian's `docker-registry` on 127.0.0.1 with
//! a config of its own (optionally htpasswd basic auth, bcrypt made here),
//! started here and stopped by PID, seeded with `skopeo copy` from OCI
//! layouts the tests build.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A running registry; killed (by its PID) when dropped or [`Registry::stop`]ped.
pub struct Registry {
    child: Option<Child>,
    pub address: String,
    pub storage: PathBuf,
}

impl Registry {
    /// Starts a registry under `dir`; with `user` = `(name, password)`
    /// it wants those credentials (htpasswd).
    pub fn start(dir: &Path, user: Option<(&str, &str)>) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let storage = dir.join(format!("registry-{port}"));
        let mut auth = String::new();
        if let Some((name, password)) = user {
            let htpasswd = dir.join(format!("htpasswd-{port}"));
            let hash = bcrypt::hash_with_salt(password, 5, [7u8; 16])
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            std::fs::write(&htpasswd, format!("{name}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config = dir.join(format!("registry-{port}.yml"));
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n{auth}http:\n  addr: {address}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child: Some(child),
            address,
            storage,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}", registry.address);
    }

    /// Kills the registry (by its PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_data(&self, digest: &crate::digest::Digest) -> PathBuf {
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&digest.hex()[..2])
            .join(digest.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies `layout`'s `tag` to `destination` (`host/repo:tag`) with skopeo,
/// as `creds` (`user:password`) when given; `all` copies every manifest of an index.
pub fn push(layout: &Path, tag: &str, destination: &str, all: bool, creds: Option<&str>) {
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ]);
    if all {
        command.arg("--all");
    }
    if let Some(creds) = creds {
        command.arg(format!("--dest-creds={creds}"));
    }
    let output = command
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{destination}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
