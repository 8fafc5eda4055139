//! Importing one archive with containerd's own client, `ctr` (same package as
//! containerd): the uncompressed tar is streamed into `ctr images import -` in the
//! `k8s.io` namespace, where CRI looks for images, and unpacked for overlayfs, the
//! snapshotter CRI uses. Image names come from the archive's index annotations
//! (`io.containerd.image.name`, else `org.opencontainers.image.ref.name`), as ctr reads them.
//!
//! Blocking: run it on the blocking pool.

use std::io::{ErrorKind, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use super::archive::{self, Compression};
use crate::{Error, Result};

/// containerd's namespace for everything CRI manages.
const NAMESPACE: &str = "k8s.io";

/// Import `archive` into the containerd at `socket`; returns the image names created.
pub fn import(socket: &Path, path: &Path, compression: Compression) -> Result<Vec<String>> {
    import_from(socket, &path.display().to_string(), || {
        archive::open(path, compression)
    })
}

/// Import an uncompressed image archive held in memory, described as `what` in errors.
pub fn import_bytes(socket: &Path, what: &str, tar: &[u8]) -> Result<Vec<String>> {
    import_from(socket, what, || {
        Ok(Box::new(std::io::Cursor::new(tar)) as Box<dyn Read + Send>)
    })
}

/// Import the tar stream `open` gives (it may be called twice).
fn import_from<'a>(
    socket: &Path,
    what: &str,
    open: impl Fn() -> std::io::Result<Box<dyn Read + Send + 'a>>,
) -> Result<Vec<String>> {
    let stdout = match run_ctr(socket, &open, true) {
        // An archive may hold an index of several platforms but the blobs of only this
        // one (`ctr export` without --all-platforms writes that); import what is here.
        Err(reason) if reason.contains("not found") => run_ctr(socket, &open, false),
        other => other,
    }
    .map_err(|reason| Error::Runtime(format!("importing {what}: {reason}")))?;
    Ok(imported_names(&stdout))
}

/// One `ctr images import`; the error is the reason, for the caller to give context.
fn run_ctr<'a>(
    socket: &Path,
    open: &impl Fn() -> std::io::Result<Box<dyn Read + Send + 'a>>,
    all_platforms: bool,
) -> std::result::Result<String, String> {
    let mut reader = open().map_err(|e| format!("opening: {e}"))?;
    let mut command = Command::new("ctr");
    command
        .arg("--address")
        .arg(socket)
        .args(["--namespace", NAMESPACE, "images", "import"])
        .args(["--snapshotter", "overlayfs"]);
    if all_platforms {
        command.arg("--all-platforms");
    }
    command
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("running ctr (it comes with containerd): {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");

    // Feed stdin from one thread while this one drains stdout and stderr, so neither
    // side can block on a full pipe. Closing stdin (end of the writer) ends the archive.
    let (copied, output) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || std::io::copy(&mut reader, &mut stdin));
        let output = child.wait_with_output();
        (writer.join(), output)
    });
    let output = output.map_err(|e| format!("waiting for ctr: {e}"))?;
    match copied {
        Ok(Ok(_)) => {}
        // ctr stopped reading: its own error below says why.
        Ok(Err(e)) if e.kind() == ErrorKind::BrokenPipe => {}
        Ok(Err(e)) => return Err(format!("reading the archive: {e}")),
        Err(_) => return Err("the archive reader panicked".into()),
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        return Err(if stderr.is_empty() {
            format!("ctr failed ({})", output.status)
        } else {
            stderr.strip_prefix("ctr: ").unwrap_or(stderr).to_string()
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The names in ctr's progress lines, `unpacking <name> (sha256:<digest>)...done`.
fn imported_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("unpacking "))
        .filter_map(|rest| rest.split_once(" (").map(|(name, _)| name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_ctr_output() {
        // What ctr 1.6 printed for the busybox archive of scripts/build-images.sh.
        let stdout = "unpacking docker.io/library/busybox:1.35 (sha256:4220689569a0d17e13b5b1f166780b3422ae14e9bfa51807ec2bd2cd5f244872)...done\n\
                      unpacking docker.io/library/busybox:latest (sha256:4220689569a0d17e13b5b1f166780b3422ae14e9bfa51807ec2bd2cd5f244872)...done\n";
        assert_eq!(
            imported_names(stdout),
            [
                "docker.io/library/busybox:1.35",
                "docker.io/library/busybox:latest"
            ]
        );
        assert!(imported_names("").is_empty());
    }
}
