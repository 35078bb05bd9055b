//! Loading real archives built here: OCI layouts (directory, tar, nested
//! index), both `docker save` layouts, bad inputs; and, with skopeo and
//! umoci, a layout converted by skopeo and an unpacked tree compared with
//! `umoci raw unpack`.

use super::{ArchiveError, Input, load};
use crate::digest::Digest;
use crate::reference::ImageReference;
use crate::store::Store;
use crate::store::tests::temp_store;
use crate::testing::{LayerTar, OciLayout, gzip, have_root, tar_of_dir};
use std::path::Path;

fn layers() -> Vec<Vec<u8>> {
    vec![
        LayerTar::new()
            .dir("bin", 0o755)
            .file("bin/tool", 0o755, b"tool")
            .file("etc/gone", 0o644, b"x")
            .dir("opaque", 0o755)
            .file("opaque/old", 0o644, b"old")
            .finish(),
        LayerTar::new()
            .file("etc/.wh.gone", 0o644, b"")
            .dir("opaque", 0o755)
            .file("opaque/.wh..wh..opq", 0o644, b"")
            .file("opaque/new", 0o644, b"new")
            .finish(),
    ]
}

/// Asserts the store holds nothing: no image, layer, blob or leftover.
fn assert_store_empty(store: &Store) {
    assert!(store.images().unwrap().is_empty());
    for dir in ["layers", "blobs/sha256", "leases"] {
        let left: Vec<_> = std::fs::read_dir(store.root().join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

fn name(value: &str) -> ImageReference {
    ImageReference::parse(value).unwrap()
}

#[test]
fn oci_layout_as_directory_and_as_tar() {
    if !have_root() {
        return;
    }
    let (dir, store) = temp_store();
    let mut layout = OciLayout::new(&dir.path().join("layout"));
    let image = layout.image(&layers(), serde_json::json!({"Cmd": ["/bin/tool"]}), true);
    layout.list(&image, Some("localhost/app:1")).finish();
    let loaded = load(&store, Input::Path(&layout.dir), None).unwrap();
    assert_eq!(loaded.len(), 1);
    let record = &loaded[0];
    assert_eq!(record.names, ["localhost/app:1"]);
    assert_eq!((record.id, record.manifest), (image.config, image.manifest));
    let trees = record.layer_trees(&store);
    assert!(trees[0].join("bin/tool").is_file());
    assert!(
        std::fs::symlink_metadata(trees[1].join("etc/gone")).is_ok(),
        "the whiteout device"
    );

    let tar = dir.path().join("layout.tar");
    std::fs::write(&tar, tar_of_dir(&layout.dir)).unwrap();
    let again = load(&store, Input::Path(&tar), Some(&name("other:2"))).unwrap();
    assert_eq!(again[0].id, image.config);
    assert_eq!(
        store.images().unwrap().len(),
        1,
        "the same image, now with both names"
    );
    assert_eq!(store.find("other:2").unwrap().names.len(), 2);
}

#[test]
fn nested_index_picks_linux_amd64_and_skips_attestations() {
    if !have_root() {
        return;
    }
    let (dir, store) = temp_store();
    let mut layout = OciLayout::new(&dir.path().join("layout"));
    let amd64 = layout.image(&layers()[..1], serde_json::json!({}), false);
    let arm64 = layout.image(
        &[LayerTar::new().file("arm", 0o644, b"").finish()],
        serde_json::json!({}),
        false,
    );
    let attestation = layout.image(
        &[LayerTar::new().file("att", 0o644, b"").finish()],
        serde_json::json!({}),
        false,
    );
    let entry = |image: &crate::testing::WrittenImage, os: &str, arch: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest.to_string(), "size": image.manifest_size,
            "platform": {"os": os, "architecture": arch}})
    };
    let mut attestation_entry = entry(&attestation, "unknown", "unknown");
    attestation_entry["annotations"] =
        serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    let nested = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm64, "linux", "arm64"), attestation_entry, entry(&amd64, "linux", "amd64")]});
    let nested = serde_json::to_vec(&nested).unwrap();
    let nested_digest = layout.blob(&nested);
    layout.index.push(
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": nested_digest.to_string(), "size": nested.len(),
        "annotations": {"io.containerd.image.name": "docker.io/library/multi:latest"}}),
    );
    layout.finish();
    let loaded = load(&store, Input::Path(&layout.dir), None).unwrap();
    assert_eq!(loaded[0].id, amd64.config);
    assert_eq!(store.find("multi").unwrap().id, amd64.config);
}

#[test]
fn docker_save_old_layout_with_a_shared_layer_symlink_from_a_gzip_stream() {
    if !have_root() {
        return;
    }
    let (_dir, store) = temp_store();
    let layers = layers();
    let diff_ids: Vec<String> = [&layers[0], &layers[1], &layers[0]]
        .iter()
        .map(|l| Digest::of(l).to_string())
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/tool"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["busybox:latest", "busybox:1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"]}]);
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, path, data).unwrap();
    };
    add("aaa/layer.tar", &layers[0]);
    add("bbb/layer.tar", &layers[1]);
    add(&config_name, &config);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    archive
        .append_link(&mut link, "ccc/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let archive = gzip(&archive.into_inner().unwrap());
    let loaded = load(&store, Input::Stream(&mut &archive[..]), None).unwrap();
    assert_eq!(
        loaded[0].names,
        [
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:1"
        ]
    );
    assert_eq!(loaded[0].layers.len(), 3);
    assert!(
        store.has_blob(&loaded[0].manifest),
        "a manifest is made for the old layout"
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        1,
        "the spooled copy is gone"
    );
}

#[test]
fn docker_25_layout_uses_the_oci_manifest() {
    if !have_root() {
        return;
    }
    let (dir, store) = temp_store();
    let mut layout = OciLayout::new(&dir.path().join("saved"));
    let image = layout.image(&layers(), serde_json::json!({}), false);
    layout.list(&image, Some("latest")).finish();
    let layer_members: Vec<String> = layers()
        .iter()
        .map(|l| format!("blobs/sha256/{}", Digest::of(l).hex()))
        .collect();
    let manifest = serde_json::json!([{"Config": format!("blobs/sha256/{}", image.config.hex()),
        "RepoTags": ["app:v2"], "Layers": layer_members}]);
    std::fs::write(
        layout.dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let tar = dir.path().join("saved.tar");
    std::fs::write(&tar, tar_of_dir(&layout.dir)).unwrap();
    let loaded = load(&store, Input::Path(&tar), None).unwrap();
    assert_eq!(loaded[0].names, ["docker.io/library/app:v2"]);
    assert_eq!(loaded[0].manifest, image.manifest);
}

#[test]
fn bad_inputs_are_clear_errors_and_leave_nothing() {
    if !have_root() {
        return;
    }
    let (dir, store) = temp_store();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not an image at all, just some text that is long enough",
    )
    .unwrap();
    let error = load(&store, Input::Path(&text), None).unwrap_err();
    assert!(matches!(error, ArchiveError::NotAnImage { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("notes.txt") && message.contains("expected a docker save archive"),
        "{message}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        load(&store, Input::Path(&empty), None),
        Err(ArchiveError::NotAnImage { .. })
    ));
    let other_tar = dir.path().join("other.tar");
    std::fs::write(
        &other_tar,
        LayerTar::new().file("readme", 0o644, b"hi").finish(),
    )
    .unwrap();
    assert!(matches!(
        load(&store, Input::Path(&other_tar), None),
        Err(ArchiveError::NotAnImage { .. })
    ));
    assert!(matches!(
        load(&store, Input::Path(&dir.path().join("missing.tar")), None),
        Err(ArchiveError::Io { .. })
    ));

    // A layer tampered with after its digest was written; then a hostile one.
    let mut layout = OciLayout::new(&dir.path().join("tampered"));
    let image = layout.image(&layers(), serde_json::json!({}), false);
    layout.list(&image, Some("x/tampered:1")).finish();
    let layer_digest = Digest::of(&layers()[1]);
    std::fs::write(
        layout.dir.join("blobs/sha256").join(layer_digest.hex()),
        LayerTar::new().finish(),
    )
    .unwrap();
    let error = load(&store, Input::Path(&layout.dir), None).unwrap_err();
    assert!(error.to_string().contains("digest mismatch"), "{error}");
    // The first layer was fine and got unpacked: it is garbage now.
    assert_eq!(store.prune().unwrap().layers.len(), 1);

    let mut layout = OciLayout::new(&dir.path().join("hostile"));
    let hostile = LayerTar::new()
        .symlink("a", "/")
        .file("a/etc/passwd", 0o644, b"x")
        .finish();
    let image = layout.image(&[hostile], serde_json::json!({}), false);
    layout.list(&image, Some("x/hostile:1")).finish();
    let error = load(&store, Input::Path(&layout.dir), None).unwrap_err();
    assert!(error.to_string().contains("\"a/etc/passwd\""), "{error}");

    let mut layout = OciLayout::new(&dir.path().join("tag-only"));
    let image = layout.image(&layers(), serde_json::json!({}), false);
    layout.list(&image, Some("latest")).finish();
    let error = load(&store, Input::Path(&layout.dir), None).unwrap_err();
    assert!(matches!(error, ArchiveError::NoName { .. }), "{error}");
    assert!(error.to_string().contains("--ref"), "{error}");
    assert_store_empty(&store);
}

#[test]
fn rootfs_import_from_a_directory_and_a_tar() {
    if !have_root() {
        return;
    }
    let (dir, store) = temp_store();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::write(rootfs.join("bin/sh"), "#!shell").unwrap();
    std::os::unix::fs::symlink("sh", rootfs.join("bin/ash")).unwrap();
    let record = crate::import::import_rootfs(&store, &rootfs, Some(&name("imported"))).unwrap();
    let tree = store.layer_tree(&record.layers[0].chain_id);
    assert_eq!(std::fs::read(tree.join("bin/sh")).unwrap(), b"#!shell");
    assert_eq!(
        std::fs::read_link(tree.join("bin/ash")).unwrap(),
        Path::new("sh")
    );
    assert_eq!(store.find("imported").unwrap().id, record.id);

    let tar = dir.path().join("rootfs.tar.gz");
    std::fs::write(&tar, gzip(&tar_of_dir(&rootfs))).unwrap();
    let dangling = crate::import::import_rootfs(&store, &tar, None).unwrap();
    assert!(dangling.names.is_empty());
    let text = dir.path().join("text");
    std::fs::write(&text, "hello, not a tar file, certainly not one at all").unwrap();
    let error = crate::import::import_rootfs(&store, &text, None).unwrap_err();
    assert!(matches!(error, ArchiveError::NotAnImage { .. }), "{error}");
}
