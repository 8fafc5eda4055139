//! hostPath volumes (and hostPath persistent volumes): the path is mounted as it is; its
//! `type` is checked, or the path created, first, with upstream's rules and messages.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Check `path` against the hostPath `type` (`""` checks nothing), creating it for
/// `DirectoryOrCreate` (mode 0755, with parents) and `FileOrCreate` (mode 0644; the
/// parent must exist, as upstream).
pub fn check_type(path: &Path, kind: Option<&str>) -> Result<(), String> {
    let shown = path.display();
    // `stat`, not `lstat`: a symlink to a directory is a directory here, as upstream.
    let meta = fs::metadata(path).ok();
    let file_type = meta.as_ref().map(|m| m.file_type());
    let is = |test: fn(&fs::FileType) -> bool| file_type.as_ref().is_some_and(test);
    match kind.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| format!("hostPath type check failed: creating {shown}: {e}")),
        "DirectoryOrCreate" | "Directory" if is(fs::FileType::is_dir) => Ok(()),
        "DirectoryOrCreate" | "Directory" => Err(format!(
            "hostPath type check failed: {shown} is not a directory"
        )),
        "FileOrCreate" if meta.is_none() => fs::OpenOptions::new()
            .write(true)
            .create(true)
            // Only reached when the path does not exist; never clobber a file anyway.
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(|e| format!("hostPath type check failed: creating {shown}: {e}")),
        "FileOrCreate" | "File" if is(fs::FileType::is_file) => Ok(()),
        "FileOrCreate" | "File" => {
            Err(format!("hostPath type check failed: {shown} is not a file"))
        }
        "Socket" if is(FileTypeExt::is_socket) => Ok(()),
        "Socket" => Err(format!(
            "hostPath type check failed: {shown} is not a socket file"
        )),
        "CharDevice" if is(FileTypeExt::is_char_device) => Ok(()),
        "CharDevice" => Err(format!(
            "hostPath type check failed: {shown} is not a character device"
        )),
        "BlockDevice" if is(FileTypeExt::is_block_device) => Ok(()),
        "BlockDevice" => Err(format!(
            "hostPath type check failed: {shown} is not a block device"
        )),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_what_the_type_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("a/b/c");
        check_type(&made, Some("DirectoryOrCreate")).unwrap();
        let meta = fs::metadata(&made).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o755 & !umask_bits());

        let file = dir.path().join("f");
        check_type(&file, Some("FileOrCreate")).unwrap();
        assert!(fs::metadata(&file).unwrap().is_file());
        // Existing paths of the right kind pass again; creation needs the parent.
        check_type(&file, Some("FileOrCreate")).unwrap();
        check_type(&made, Some("DirectoryOrCreate")).unwrap();
        assert!(check_type(&dir.path().join("no/parent"), Some("FileOrCreate")).is_err());
    }

    #[test]
    fn refuses_the_wrong_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "").unwrap();
        let missing = dir.path().join("missing");
        let err = |path: &Path, kind| check_type(path, Some(kind)).unwrap_err();

        assert_eq!(
            err(&file, "Directory"),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        assert_eq!(
            err(&file, "DirectoryOrCreate"),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        assert!(err(&missing, "Directory").ends_with("is not a directory"));
        assert!(err(dir.path(), "File").ends_with("is not a file"));
        assert!(err(&file, "Socket").ends_with("is not a socket file"));
        assert!(err(&file, "CharDevice").ends_with("is not a character device"));
        assert!(err(&file, "BlockDevice").ends_with("is not a block device"));
        assert_eq!(err(&file, "Pipe"), "Pipe is an invalid volume type");
        check_type(&missing, None).unwrap();
        check_type(Path::new("/dev/null"), Some("CharDevice")).unwrap();
        // The path itself is never created for the checking types.
        assert!(!missing.exists());
    }

    #[test]
    fn sockets_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        check_type(&socket, Some("Socket")).unwrap();
    }

    /// The process umask narrows created directories' modes.
    fn umask_bits() -> u32 {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        fs::DirBuilder::new().mode(0o777).create(&probe).unwrap();
        0o777 & !(fs::metadata(&probe).unwrap().permissions().mode() & 0o777)
    }
}
