//! This machine's claim on its node name: the node password (created once, kept in
//! `--node-password-file`, mode 0600) and, with `--with-node-id`, a random id appended
//! to the name and kept beside the password file (`id`), so a reinstalled agent on the
//! same machine comes back as the same node while a cloned name from another machine
//! is refused by the server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// The node name and password this agent joins with.
#[derive(Clone)]
pub struct NodePassword {
    pub name: String,
    pub password: String,
    pub password_file: PathBuf,
}

impl std::fmt::Debug for NodePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePassword")
            .field("name", &self.name)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let _ = write!(out, "{:02x}", rand::random::<u8>());
    }
    out
}

/// Read a small secret file, or create it with `make()` (mode 0600) when missing.
fn read_or_create(path: &Path, what: &str, make: impl FnOnce() -> String) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => Err(anyhow!(
            "{what} file {} is empty; remove it to create a new one",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make();
            k3rs_certs::write_file_with_mode(path, format!("{value}\n").as_bytes(), 0o600)
                .with_context(|| format!("creating {what} file {}", path.display()))?;
            tracing::info!(path = %path.display(), "created {what} file");
            Ok(value)
        }
        Err(e) => Err(anyhow!("reading {what} file {}: {e}", path.display())),
    }
}

/// `<base>-<id>` with `--with-node-id`, else `base`.
pub fn node_name(base: &str, node_id: Option<&str>) -> String {
    match node_id {
        Some(id) => format!("{base}-{id}"),
        None => base.to_string(),
    }
}

/// Load (or create) the node password and, when asked, the node id; name the node.
pub fn ensure(base_name: &str, with_node_id: bool, password_file: &Path) -> Result<NodePassword> {
    let password = read_or_create(password_file, "node password", || random_hex(16))?;
    let node_id = match with_node_id {
        false => None,
        true => {
            let id_file = password_file.parent().unwrap_or(Path::new(".")).join("id");
            let id = read_or_create(&id_file, "node id", || random_hex(4))?;
            if id.len() != 8
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(anyhow!(
                    "node id file {} must hold 8 lowercase hex digits; remove it to create a new one",
                    id_file.display()
                ));
            }
            Some(id)
        }
    };
    let name = node_name(base_name, node_id.as_deref());
    if !k3rs_core::validation::is_dns1123_subdomain(&name) {
        return Err(anyhow!(
            "invalid --node-name {base_name:?}: {name:?} is not a lowercase DNS subdomain"
        ));
    }
    Ok(NodePassword {
        name,
        password,
        password_file: password_file.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn password_and_id_are_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node/password");
        let first = ensure("worker", true, &file).unwrap();
        assert_eq!(first.password.len(), 32);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (base, id) = first.name.rsplit_once('-').unwrap();
        assert_eq!(base, "worker");
        assert_eq!(id.len(), 8);
        let again = ensure("worker", true, &file).unwrap();
        assert_eq!(
            (again.name, again.password),
            (first.name, first.password.clone())
        );
        let plain = ensure("worker", false, &file).unwrap();
        assert_eq!(plain.name, "worker");
        assert_eq!(plain.password, first.password);
        assert!(!format!("{plain:?}").contains(&first.password));
    }

    #[test]
    fn empty_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "\n").unwrap();
        let err = ensure("w", false, &file).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }
}
