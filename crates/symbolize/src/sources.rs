//! Where the symbols of a module come from: a separate debug file found by build id, the
//! module file itself with its debug info (blazesym follows `.gnu_debuglink`,
//! `.gnu_debugaltlink` and `.dwp` files from there), or, when its debug info cannot be read,
//! the module's ELF symbol table alone.

use std::path::{Path, PathBuf};

use leakscope_format::Module;

/// The directories searched for separate debug info when none are given, as GDB and
/// blazesym search them.
pub const DEFAULT_DEBUG_DIRS: &[&str] = &["/usr/lib/debug", "/lib/debug"];

/// One place to try for a module's symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SymbolSource {
    /// The ELF file to read.
    pub path: PathBuf,
    /// Read DWARF (and follow debug links), not only the ELF symbol table.
    pub debug_info: bool,
}

/// The places to try for `module`'s symbols, best first.
pub(crate) fn symbol_sources(module: &Module, debug_dirs: &[PathBuf]) -> Vec<SymbolSource> {
    let mut sources: Vec<SymbolSource> = build_id_debug_files(&module.build_id, debug_dirs)
        .into_iter()
        .filter(|path| path.is_file())
        .map(|path| SymbolSource {
            path,
            debug_info: true,
        })
        .collect();
    let module_path = PathBuf::from(&module.path);
    sources.push(SymbolSource {
        path: module_path.clone(),
        debug_info: true,
    });
    sources.push(SymbolSource {
        path: module_path,
        debug_info: false,
    });
    sources
}

/// `<dir>/.build-id/ab/cdef....debug` for each debug directory: where distributions install
/// the separate debug info of a file with build id `abcdef...`. Build ids too short to be
/// real (fewer than two bytes) name no file.
pub(crate) fn build_id_debug_files(build_id: &[u8], debug_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let Some((first, rest)) = build_id.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        return Vec::new();
    }
    let rest_hex: String = rest.iter().map(|byte| format!("{byte:02x}")).collect();
    let relative = Path::new(".build-id")
        .join(format!("{first:02x}"))
        .join(format!("{rest_hex}.debug"));
    debug_dirs.iter().map(|dir| dir.join(&relative)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_path_splits_off_the_first_byte() {
        let dirs = [PathBuf::from("/usr/lib/debug"), PathBuf::from("/opt/dbg")];
        assert_eq!(
            build_id_debug_files(&[0xab, 0xcd, 0xef, 0x01], &dirs),
            [
                PathBuf::from("/usr/lib/debug/.build-id/ab/cdef01.debug"),
                PathBuf::from("/opt/dbg/.build-id/ab/cdef01.debug"),
            ]
        );
    }

    #[test]
    fn no_or_one_byte_build_id_names_no_debug_file() {
        let dirs = [PathBuf::from("/usr/lib/debug")];
        assert!(build_id_debug_files(&[], &dirs).is_empty());
        assert!(build_id_debug_files(&[0xab], &dirs).is_empty());
    }

    #[test]
    fn without_a_debug_file_the_module_is_tried_with_then_without_debug_info() {
        let module = Module {
            path: "/bin/prog".into(),
            build_id: vec![1, 2, 3, 4],
            ..Module::default()
        };
        let sources = symbol_sources(&module, &[PathBuf::from("/nonexistent-debug-dir")]);
        assert_eq!(
            sources,
            [
                SymbolSource {
                    path: "/bin/prog".into(),
                    debug_info: true
                },
                SymbolSource {
                    path: "/bin/prog".into(),
                    debug_info: false
                },
            ]
        );
    }
}
