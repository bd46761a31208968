//! Files that hold secrets or personal data (the database and its WAL and
//! shared-memory files, the outbox, the server key) are readable by their
//! owner only: created 0600, and narrowed to 0600 if found wider.

use std::path::Path;

/// Opens `path` for appending, creating it with mode 0600 if missing.
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates a new file (failing if it exists) only its owner can read.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates `path` empty with mode 0600 if it does not exist, and narrows an
/// existing file that group or others can read to 0600 (with a warning: an
/// older version or another tool made it).
pub fn ensure_private(path: &Path) -> std::io::Result<()> {
    match create_new(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    narrow(path)
}

/// Narrows an existing file to 0600 when group or others have any access.
#[cfg(unix)]
pub fn narrow(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "file was readable by others; narrowing it to 0600"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn narrow(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Whether group or others can access `path` (unix), for the key file check.
#[cfg(unix)]
pub fn exposed_mode(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    Ok((mode & 0o077 != 0).then_some(mode & 0o777))
}

#[cfg(not(unix))]
pub fn exposed_mode(_path: &Path) -> std::io::Result<Option<u32>> {
    Ok(None)
}
