//! The pause image k3rs carries: the static pause program that `build.rs` compiles from
//! `pause/pause.c`, packed here as an OCI image-layout tarball that `ctr images import`
//! reads, so the sandbox image never has to come from a registry.
//!
//! The tarball is deterministic (fixed mtimes and owners, sorted entries, compact JSON in
//! a fixed key order): the same binary gives the same bytes and digests every time, so an
//! agent can tell whether containerd already holds this very image.

use std::io;

use serde_json::json;
use sha2::{Digest, Sha256};

/// The static pause program, as `build.rs` compiled it for this target.
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Where the program sits in the image, and the image's entrypoint.
const PAUSE_PATH: &str = "pause";
/// `created` of the config and its history: the epoch, so rebuilding changes nothing.
const CREATED: &str = "1970-01-01T00:00:00Z";

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Uncompressed: the layer is small, and its diff ID is then simply its digest.
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// An OCI image layout in one tar stream, and the digests that identify the image.
#[derive(Clone, Debug)]
pub struct ImageLayout {
    pub tar: Vec<u8>,
    /// What the image name points at (`sha256:...`).
    pub manifest_digest: String,
    /// The image ID as CRI reports it (`sha256:...`).
    pub config_digest: String,
}

/// An OCI platform (Go's names for architectures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl Platform {
    /// The platform this build of k3rs (and so the pause program) runs on.
    pub fn this_build() -> Platform {
        Platform::of_rust_arch(std::env::consts::ARCH)
    }

    /// Rust's name for an architecture mapped to the OCI (Go) one; names that are the
    /// same in both are passed through.
    pub fn of_rust_arch(arch: &'static str) -> Platform {
        let little_endian = cfg!(target_endian = "little");
        let (architecture, variant) = match arch {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            // Debian's armhf, the 32-bit ARM that containerd's own images are built for.
            "arm" => ("arm", Some("v7")),
            "powerpc64" if little_endian => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "mips64" if little_endian => ("mips64le", None),
            "mips" if little_endian => ("mipsle", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            architecture,
            variant,
        }
    }

    fn to_json(self) -> serde_json::Value {
        let mut platform = json!({"architecture": self.architecture, "os": "linux"});
        if let Some(variant) = self.variant {
            platform["variant"] = variant.into();
        }
        platform
    }
}

/// The image layout of `binary` as `/pause` (mode 0755, the entrypoint), named `name`
/// (a full reference with a tag, such as `docker.io/rancher/mirrored-pause:3.6`).
pub fn image_layout(name: &str, binary: &[u8], platform: Platform) -> io::Result<ImageLayout> {
    let layer = tar_of(&[(PAUSE_PATH, 0o755, binary)])?;
    let layer_digest = digest_of(&layer);

    let mut config = json!({
        "architecture": platform.architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Entrypoint": [format!("/{PAUSE_PATH}")]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": CREATED, "created_by": "k3rs built-in pause image"}],
    });
    if let Some(variant) = platform.variant {
        config["variant"] = variant.into();
    }
    let config = serde_json::to_vec(&config)?;
    let config_digest = digest_of(&config);

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len()}],
    }))?;
    let manifest_digest = digest_of(&manifest);

    // ctr names the image from the first annotation; the second (the tag alone) is what
    // containerd's own exporter writes, for other readers of OCI layouts.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": platform.to_json(),
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag_of(name),
            },
        }],
    }))?;
    let oci_layout = serde_json::to_vec(&json!({"imageLayoutVersion": "1.0.0"}))?;

    let blob_paths = [
        blob_path(&layer_digest),
        blob_path(&config_digest),
        blob_path(&manifest_digest),
    ];
    let mut files = [
        (blob_paths[0].as_str(), 0o644, &layer[..]),
        (blob_paths[1].as_str(), 0o644, &config[..]),
        (blob_paths[2].as_str(), 0o644, &manifest[..]),
        ("index.json", 0o644, &index[..]),
        ("oci-layout", 0o644, &oci_layout[..]),
    ];
    files.sort_by_key(|&(path, ..)| path);
    Ok(ImageLayout {
        tar: tar_of(&files)?,
        manifest_digest,
        config_digest,
    })
}

/// The tag of a reference: what follows the last `:` of its last path part ("latest"
/// when there is none, as a registry port is not a tag).
fn tag_of(name: &str) -> &str {
    let last_part = name.rsplit('/').next().unwrap_or(name);
    last_part.rsplit_once(':').map_or("latest", |(_, tag)| tag)
}

fn digest_of(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// A tar of regular files, in the order given, owned by root with the epoch as mtime.
fn tar_of(files: &[(&str, u32, &[u8])]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for &(path, mode, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, data)?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use serde_json::Value;

    use super::*;

    const NAME: &str = "docker.io/rancher/mirrored-pause:3.6";

    /// One file of a tar, with the header fields that must be fixed.
    #[derive(Debug, PartialEq, Eq)]
    struct Entry {
        path: String,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        data: Vec<u8>,
    }

    /// The files of a tar, in archive order.
    fn entries(tar: &[u8]) -> Vec<Entry> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                assert_eq!(header.entry_type(), tar::EntryType::Regular);
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                Entry {
                    path: entry.path().unwrap().to_string_lossy().into_owned(),
                    mode: header.mode().unwrap(),
                    owner: (header.uid().unwrap(), header.gid().unwrap()),
                    mtime: header.mtime().unwrap(),
                    data,
                }
            })
            .collect()
    }

    fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &str) -> &'a [u8] {
        &files[&blob_path(digest)]
    }

    #[test]
    fn layout_is_a_valid_oci_image_of_the_binary() {
        let binary = b"\x7fELF not really, but bytes are bytes";
        let platform = Platform {
            architecture: "arm",
            variant: Some("v7"),
        };
        let layout = image_layout(NAME, binary, platform).unwrap();

        let listed = entries(&layout.tar);
        let names: Vec<&str> = listed.iter().map(|entry| entry.path.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "entries are sorted");
        assert_eq!(names.len(), 5);
        for entry in &listed {
            assert_eq!(
                (entry.mode, entry.owner, entry.mtime),
                (0o644, (0, 0), 0),
                "{}",
                entry.path
            );
        }
        let files: BTreeMap<String, Vec<u8>> = listed
            .into_iter()
            .map(|entry| (entry.path, entry.data))
            .collect();

        // Every blob is stored under its own digest.
        for (path, data) in &files {
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                assert_eq!(digest_of(data), format!("sha256:{hex}"));
            }
        }
        let oci_layout: Value = serde_json::from_slice(&files["oci-layout"]).unwrap();
        assert_eq!(oci_layout, json!({"imageLayoutVersion": "1.0.0"}));

        let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
        let descriptor = &index["manifests"][0];
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(descriptor["digest"], layout.manifest_digest);
        assert_eq!(descriptor["annotations"]["io.containerd.image.name"], NAME);
        assert_eq!(
            descriptor["annotations"]["org.opencontainers.image.ref.name"],
            "3.6"
        );
        assert_eq!(
            descriptor["platform"],
            json!({"architecture": "arm", "os": "linux", "variant": "v7"})
        );
        let manifest_bytes = blob(&files, &layout.manifest_digest);
        assert_eq!(descriptor["size"], manifest_bytes.len());

        let manifest: Value = serde_json::from_slice(manifest_bytes).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["config"]["digest"], layout.config_digest);
        let config_bytes = blob(&files, &layout.config_digest);
        assert_eq!(manifest["config"]["size"], config_bytes.len());
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        let layer = blob(&files, layer_digest);
        assert_eq!(manifest["layers"][0]["size"], layer.len());
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);

        let config: Value = serde_json::from_slice(config_bytes).unwrap();
        assert_eq!(config["architecture"], "arm");
        assert_eq!(config["variant"], "v7");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], CREATED);
        assert_eq!(config["config"]["Entrypoint"], json!(["/pause"]));
        assert_eq!(config["rootfs"]["diff_ids"], json!([layer_digest]));

        assert_eq!(
            entries(layer),
            [Entry {
                path: "pause".into(),
                mode: 0o755,
                owner: (0, 0),
                mtime: 0,
                data: binary.to_vec(),
            }]
        );
    }

    #[test]
    fn layout_is_the_same_every_time() {
        let platform = Platform::this_build();
        let first = image_layout(NAME, PAUSE_BINARY, platform).unwrap();
        let second = image_layout(NAME, PAUSE_BINARY, platform).unwrap();
        assert_eq!(first.tar, second.tar);
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(first.config_digest, second.config_digest);
        let other = image_layout("example.com/pause:1", PAUSE_BINARY, platform).unwrap();
        // The name is only in the index: the image itself is the same.
        assert_eq!(other.manifest_digest, first.manifest_digest);
        assert_ne!(other.tar, first.tar);
    }

    #[test]
    fn platforms_use_go_names() {
        let arch = |rust| Platform::of_rust_arch(rust);
        assert_eq!(arch("x86_64").architecture, "amd64");
        assert_eq!(arch("aarch64").architecture, "arm64");
        assert_eq!(
            arch("arm"),
            Platform {
                architecture: "arm",
                variant: Some("v7")
            }
        );
        assert_eq!(arch("x86").architecture, "386");
        assert_eq!(arch("riscv64").architecture, "riscv64");
        assert_eq!(arch("s390x").architecture, "s390x");
        assert_eq!(arch("loongarch64").architecture, "loong64");
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of(NAME), "3.6");
        assert_eq!(tag_of("localhost:5000/pause"), "latest");
        assert_eq!(tag_of("localhost:5000/pause:3.10"), "3.10");
    }

    /// Whether an ELF file has a program interpreter (a PT_INTERP program header): a
    /// dynamically linked pause would not run in an image without a C library.
    fn has_interpreter(elf: &[u8]) -> bool {
        let wide = elf[4] == 2;
        let little = elf[5] == 1;
        let number = |at: usize, len: usize| -> usize {
            let bytes = &elf[at..at + len];
            let fold = |n: usize, b: &u8| (n << 8) | usize::from(*b);
            if little {
                bytes.iter().rev().fold(0, fold)
            } else {
                bytes.iter().fold(0, fold)
            }
        };
        let (phoff, phentsize, phnum) = if wide {
            (number(0x20, 8), number(0x36, 2), number(0x38, 2))
        } else {
            (number(0x1c, 4), number(0x2a, 2), number(0x2c, 2))
        };
        const PT_INTERP: usize = 3;
        (0..phnum).any(|i| number(phoff + i * phentsize, 4) == PT_INTERP)
    }

    #[test]
    fn embedded_binary_is_a_static_executable() {
        assert!(PAUSE_BINARY.starts_with(b"\x7fELF"));
        assert!(!has_interpreter(PAUSE_BINARY));
        // The check itself: a test binary linked against glibc has an interpreter.
        if cfg!(target_env = "gnu") {
            let this_test = std::fs::read(std::env::current_exe().unwrap()).unwrap();
            assert!(has_interpreter(&this_test));
        }
    }

    /// The signals pause catches, from `SigCgt` in `/proc/<pid>/status`.
    fn caught_signals(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0)
    }

    #[test]
    fn embedded_binary_waits_and_leaves_cleanly_on_sigterm() {
        use std::os::unix::fs::PermissionsExt;
        use std::time::{Duration, Instant};

        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, PAUSE_BINARY).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test's fork may briefly hold our write descriptor (ETXTBSY).
        let mut attempts = 0;
        let mut child = loop {
            match std::process::Command::new(&path).spawn() {
                Ok(child) => break child,
                Err(e)
                    if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                        && attempts < 50 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("running the pause program: {e}"),
            }
        };
        let wanted = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD]
            .iter()
            .fold(0u64, |mask, signal| mask | 1 << (*signal as u64 - 1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while caught_signals(child.id()) & wanted != wanted {
            assert!(Instant::now() < deadline, "pause never set up its handlers");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(child.try_wait().unwrap().is_none(), "pause returned early");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "pause left with {status}");
    }
}
