//! Finding the `redis-server` binary: `$CONC_REDIS_SERVER`, else `redis-server` on `PATH`.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{BINARY_ENV, DEFAULT_BINARY};
use crate::HarnessError;

/// Resolves the `redis-server` binary as
/// [`RedisServer::start`](super::RedisServer::start) does: `$CONC_REDIS_SERVER` when set and
/// not empty, else `redis-server` on `PATH`.
///
/// # Examples
///
/// ```
/// match conc_test_support::redis::find_binary() {
///     Ok(path) => assert!(path.is_file()),
///     Err(err) => println!("no redis-server here: {err}"),
/// }
/// ```
pub fn find_binary() -> Result<PathBuf, HarnessError> {
    find_binary_in(std::env::var_os(BINARY_ENV), path_var())
}

pub(super) fn path_var() -> Option<OsString> {
    std::env::var_os("PATH")
}

/// [`find_binary`] with the environment passed in, so it can be tested without touching
/// the process-global environment.
pub(super) fn find_binary_in(
    env_value: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, HarnessError> {
    match env_value.filter(|v| !v.is_empty()) {
        Some(binary) => resolve(Path::new(&binary), &format!("from {BINARY_ENV}"), path),
        None => resolve(Path::new(DEFAULT_BINARY), "default", path),
    }
}

/// A name with a `/` is a path that must be an executable file; a bare name is looked up
/// in the `PATH` directories.
pub(super) fn resolve(
    binary: &Path,
    origin: &str,
    path: Option<OsString>,
) -> Result<PathBuf, HarnessError> {
    let not_found = |searched: String| HarnessError::BinaryNotFound {
        service: DEFAULT_BINARY,
        binary: binary.to_path_buf(),
        searched,
    };
    if binary.components().count() != 1 || binary.is_absolute() {
        return if is_executable(binary) {
            Ok(binary.to_path_buf())
        } else {
            Err(not_found(format!("{origin}; no executable file at that path")))
        };
    }
    let path = path.unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            not_found(format!(
                "{origin}; searched PATH={}; install redis-server or set {BINARY_ENV}",
                path.to_string_lossy()
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::{BINARY_ENV, find_binary_in};
    use crate::HarnessError;

    fn not_found(err: HarnessError) -> (PathBuf, String) {
        match err {
            HarnessError::BinaryNotFound { binary, searched, .. } => (binary, searched),
            other => panic!("expected BinaryNotFound, got {other:?}"),
        }
    }

    #[test]
    fn env_path_that_does_not_exist_is_named() {
        let err = find_binary_in(Some("/nonexistent/dir/redis-server".into()), None).unwrap_err();
        let message = err.to_string();
        let (binary, searched) = not_found(err);
        assert_eq!(binary, Path::new("/nonexistent/dir/redis-server"));
        assert!(searched.contains(BINARY_ENV), "{searched}");
        assert!(message.contains("/nonexistent/dir/redis-server"), "{message}");
    }

    #[test]
    fn bare_name_is_searched_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("my-redis");
        fs::write(&fake, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(find_binary_in(Some("my-redis".into()), Some(path.clone())).unwrap(), fake);

        let (binary, searched) = not_found(find_binary_in(None, Some(path)).unwrap_err());
        assert_eq!(binary, Path::new("redis-server"));
        assert!(searched.contains("/nonexistent"), "{searched}");
    }

    #[test]
    fn empty_env_value_means_default_and_non_executables_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("redis-server");
        fs::write(&plain, "not executable").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        let path = OsString::from(dir.path());
        let (binary, _) = not_found(find_binary_in(Some(OsString::new()), Some(path)).unwrap_err());
        assert_eq!(binary, Path::new("redis-server"));
        let (binary, _) =
            not_found(find_binary_in(Some(plain.clone().into_os_string()), None).unwrap_err());
        assert_eq!(binary, plain);
    }
}
