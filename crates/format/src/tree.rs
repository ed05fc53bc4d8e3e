//! The files of one run: the root profile and the profiles every other process image of the
//! run wrote beside it.
//!
//! Where those files are is part of the profile format (the agent's writer names them:
//! `<path>.<pid>` for a forked child, `<path>.<pid>.e`, `<path>.<pid>.e.e`... for the images
//! that follow an `exec`, or a later process with the same pid), so the format crate, not the
//! CLI, knows how to find and read them. Deciding what the tree means (which image is shown
//! under which) is the analysis's job.

use std::path::{Path, PathBuf};

use crate::{read_profile, Profile, ReadError};

/// A profile and the profiles of the other process images of its run, read from disk.
#[derive(Debug, Default)]
pub struct ProfileTree {
    /// The profile of the process `leakscope run` started.
    pub root: Profile,
    /// The other images' profiles, each with its file's path, in the order of their paths.
    pub descendants: Vec<(PathBuf, Profile)>,
    /// The other images' files that could not be read, and why; they are left out.
    pub unreadable: Vec<(PathBuf, ReadError)>,
}

impl ProfileTree {
    /// Every profile of the tree: the root first, then the descendants in their order. An
    /// index into this list names a profile of the tree.
    pub fn profiles(&self) -> Vec<&Profile> {
        std::iter::once(&self.root)
            .chain(self.descendants.iter().map(|(_, profile)| profile))
            .collect()
    }
}

/// Read the profile at `path` and every profile of its run beside it
/// ([`child_profile_paths`]). Only the root must be readable; a descendant that is not is
/// listed in [`ProfileTree::unreadable`].
pub fn read_tree(path: &Path) -> Result<ProfileTree, ReadError> {
    let root = read_profile(path)?;
    let mut tree = ProfileTree {
        root,
        ..ProfileTree::default()
    };
    for child_path in child_profile_paths(path) {
        match read_profile(&child_path) {
            Ok(profile) => tree.descendants.push((child_path, profile)),
            Err(error) => tree.unreadable.push((child_path, error)),
        }
    }
    Ok(tree)
}

/// The files beside `path` that other process images of the run wrote: `<path>.<pid>`, and
/// after an `exec` (or for a later process with the same pid) `<path>.<pid>.e`,
/// `<path>.<pid>.e.e`, ... (see the agent's writer), sorted.
pub fn child_profile_paths(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (
        path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }),
        path.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let file_name = file_name.to_str()?;
            let rest = file_name.strip_prefix(&prefix)?;
            is_child_suffix(rest).then(|| entry.path())
        })
        .collect();
    found.sort();
    found
}

/// `<pid>` followed by any number of `.e` (or further `.<digits>`) parts.
fn is_child_suffix(rest: &str) -> bool {
    let mut parts = rest.split('.');
    let Some(pid) = parts.next() else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && parts.all(|part| {
            part == "e" || (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_suffixes_are_a_pid_then_exec_marks() {
        for good in ["123", "123.e", "123.e.e", "123.456", "9.e.77"] {
            assert!(is_child_suffix(good), "{good}");
        }
        for bad in ["", "x", "123.", "123.x", ".e", "12a", "123..e", "123.json"] {
            assert!(!is_child_suffix(bad), "{bad}");
        }
    }

    #[test]
    fn child_profile_paths_finds_only_the_run_s_files_in_order() {
        let dir = std::env::temp_dir().join(format!("leakscope-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "run.profile",
            "run.profile.20",
            "run.profile.3.e",
            "run.profile.3",
            "run.profile.txt",
            "other.profile.4",
            "run.profilex.5",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = child_profile_paths(&dir.join("run.profile"));
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["run.profile.20", "run.profile.3", "run.profile.3.e"]
        );
    }
}
