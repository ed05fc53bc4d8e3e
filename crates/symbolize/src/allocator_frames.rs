//! Which frames belong to the allocation machinery rather than to the program.
//!
//! The agent removes its own frames, so a stack starts at the caller of `malloc`. When that
//! caller is C++'s `operator new` or Rust's allocator shims, the frame the user wants to see
//! (their `new Widget`, their `Vec::push`) comes a few frames later. Reports start at the
//! program's own call, so those leading frames are dropped here.
//!
//! The rules are deliberately narrow: only leading frames are dropped, and only frames whose
//! name is a known allocator internal. A frame without a name stops the dropping, as does any
//! frame the rules do not know. libc functions that allocate on the program's behalf (`strdup`,
//! `asprintf`) are kept, as memcheck keeps them.

use leakscope_format::Frame;

/// Rust's allocator entry points, after any `__rustc::` prefix (recent toolchains mangle the
/// shims into a fake `__rustc` crate). `__rg_*` are the shims for a `#[global_allocator]`,
/// `__rdl_*` the default System allocator's.
const RUST_ALLOCATOR_SHIMS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rdl_alloc",
    "__rdl_alloc_zeroed",
    "__rdl_realloc",
    "__rg_alloc",
    "__rg_alloc_zeroed",
    "__rg_realloc",
];

/// Paths of Rust standard library items that only ever run to allocate: the `alloc::alloc`
/// free functions and `Global`, `RawVec`'s growth (`finish_grow`, `grow_one`,
/// `do_reserve_and_handle`...), `System`'s `GlobalAlloc` impl and the trait's provided methods.
const RUST_ALLOCATOR_PREFIXES: &[&str] = &[
    "alloc::alloc::",
    "alloc::raw_vec::",
    "std::alloc::System as core::alloc::",
    "std::alloc::System>::",
    "core::alloc::global::GlobalAlloc::",
];

/// Is `function` (a demangled name) part of the allocation machinery?
pub(crate) fn is_allocator_function(function: &str) -> bool {
    is_cxx_operator_new(function) || is_rust_allocator_internal(function)
}

/// The global `operator new` and `operator new[]`, in every variant (plain, nothrow,
/// `align_val_t`), demangled or, where demangling failed, by their mangled prefixes
/// (`_Znwm`, `_Znam`, `_ZnwmRKSt9nothrow_t`, `_ZnwmSt11align_val_t`...). Class-specific
/// `Widget::operator new` is the program's own code and stays.
fn is_cxx_operator_new(function: &str) -> bool {
    function.starts_with("operator new(")
        || function.starts_with("operator new[](")
        || function.starts_with("_Znw")
        || function.starts_with("_Zna")
}

fn is_rust_allocator_internal(function: &str) -> bool {
    // v0 demangling writes inherent and trait impls as `<Type>::method` or
    // `<Type as Trait>::method`; the leading angle brackets carry no meaning for the match.
    let path = function.trim_start_matches('<');
    let path = path.strip_prefix("__rustc::").unwrap_or(path);
    if RUST_ALLOCATOR_SHIMS.contains(&path) {
        return true;
    }
    if RUST_ALLOCATOR_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
    {
        return true;
    }
    // The platform layer moves between releases (`std::sys::alloc::unix`,
    // `std::sys::pal::unix::alloc`, `std::sys::alloc::realloc_fallback`...), so match any
    // `std::sys` item whose module path mentions allocation.
    if let Some(rest) = path.strip_prefix("std::sys::") {
        return path_segments(rest)
            .filter(|segment| !segment.starts_with('<'))
            .any(|segment| segment.contains("alloc"));
    }
    false
}

/// The `::`-separated segments of a demangled path, with anything inside angle brackets
/// (generic arguments, `<impl Trait for Type>`) kept inside its segment, so that a type
/// argument such as `Cell<Arc<..., alloc::alloc::Global>>` cannot make a segment of its own.
fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    let mut start = 0;
    let mut segments = Vec::new();
    let bytes = path.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'<' => depth += 1,
            // `->` in a function pointer type is not a closing bracket.
            b'>' if index == 0 || bytes[index - 1] != b'-' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(index + 1) == Some(&b':') => {
                segments.push(&path[start..index]);
                index += 2;
                start = index;
                continue;
            }
            _ => {}
        }
        index += 1;
    }
    segments.push(&path[start..]);
    segments.into_iter()
}

/// Remove the leading allocator frames of a symbolized stack. If every frame is an allocator
/// frame (a stack cut short inside the allocator), the stack is kept whole: a report with an
/// allocator frame says more than one with no frame at all.
pub(crate) fn drop_leading_allocator_frames(frames: &mut Vec<Frame>) {
    let leading = frames
        .iter()
        .take_while(|frame| frame.function.as_deref().is_some_and(is_allocator_function))
        .count();
    if leading < frames.len() {
        frames.drain(..leading);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: &str) -> Frame {
        Frame {
            function: Some(function.to_owned()),
            ..Frame::default()
        }
    }

    fn names(frames: &[Frame]) -> Vec<&str> {
        frames
            .iter()
            .map(|frame| frame.function.as_deref().unwrap_or("???"))
            .collect()
    }

    #[test]
    fn every_operator_new_variant_is_an_allocator_frame() {
        for name in [
            "operator new(unsigned long)",
            "operator new[](unsigned long)",
            "operator new(unsigned long, std::nothrow_t const&)",
            "operator new[](unsigned long, std::nothrow_t const&)",
            "operator new(unsigned long, std::align_val_t)",
            "operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)",
            "_Znwm",
            "_ZnamRKSt9nothrow_t",
        ] {
            assert!(is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn class_specific_operator_new_and_delete_are_program_code() {
        for name in [
            "Widget::operator new(unsigned long)",
            "operator delete(void*)",
            "operator newline_parser()",
        ] {
            assert!(!is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn rust_allocator_internals_as_rustc_demangles_them() {
        for name in [
            "__rust_alloc",
            "__rustc::__rust_alloc",
            "__rustc::__rust_alloc_zeroed",
            "__rustc::__rust_realloc",
            "__rustc::__rdl_alloc",
            "__rdl_realloc",
            "__rdl_alloc_zeroed",
            "__rg_alloc",
            "alloc::alloc::alloc",
            "alloc::alloc::exchange_malloc",
            "alloc::alloc::Global::alloc_impl",
            "alloc::alloc::Global::alloc_impl_runtime",
            "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
            "alloc::raw_vec::finish_grow",
            "<alloc::raw_vec::RawVecInner>::finish_grow",
            "<alloc::raw_vec::RawVec<u8>>::grow_one",
            "alloc::raw_vec::RawVec<T,A>::grow_one",
            "<alloc::raw_vec::RawVecInner<_>>::reserve::do_reserve_and_handle::<alloc::alloc::Global>",
            "<std::alloc::System as core::alloc::global::GlobalAlloc>::alloc",
            "<std::alloc::System as core::alloc::global::GlobalAlloc>::realloc",
            "<std::alloc::System>::alloc_impl",
            "core::alloc::global::GlobalAlloc::alloc_zeroed",
            "std::sys::alloc::unix::<impl core::alloc::global::GlobalAlloc for std::alloc::System>::alloc",
            "std::sys::pal::unix::alloc::<impl core::alloc::global::GlobalAlloc for std::alloc::System>::alloc",
            "std::sys::alloc::realloc_fallback",
            "std::sys::alloc::unix::aligned_malloc",
        ] {
            assert!(is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn rust_code_that_merely_allocates_is_not_allocator_internal() {
        for name in [
            "<alloc::vec::Vec<u8>>::push",
            "alloc::vec::Vec<T,A>::with_capacity",
            "<alloc::boxed::Box<u64>>::new",
            "alloc::string::String::from",
            "std::sys::thread_local::native::eager::destroy",
            "std::sys::pal::unix::thread::Thread::new",
            "std::sys::thread_local::native::eager::destroy::<core::cell::Cell<core::option::Option<alloc::sync::Arc<u8, alloc::alloc::Global>>>>",
            "myapp::alloc::pool::grow",
            "leaky::make_buffer",
        ] {
            assert!(!is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn libc_functions_that_allocate_for_the_program_stay() {
        for name in ["strdup", "asprintf", "malloc", "calloc", "getline"] {
            assert!(!is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn only_leading_allocator_frames_are_dropped() {
        let mut frames = vec![
            named("__rustc::__rdl_alloc"),
            named("__rustc::__rust_alloc"),
            named("alloc::raw_vec::finish_grow"),
            named("<alloc::vec::Vec<u8>>::push"),
            named("app::fill"),
            // Not leading: a user function that happens to call into the allocator by name.
            named("alloc::alloc::alloc"),
            named("main"),
        ];
        drop_leading_allocator_frames(&mut frames);
        assert_eq!(
            names(&frames),
            [
                "<alloc::vec::Vec<u8>>::push",
                "app::fill",
                "alloc::alloc::alloc",
                "main"
            ]
        );
    }

    #[test]
    fn an_unnamed_frame_stops_the_dropping() {
        let mut frames = vec![
            Frame::default(),
            named("operator new(unsigned long)"),
            named("main"),
        ];
        drop_leading_allocator_frames(&mut frames);
        assert_eq!(
            names(&frames),
            ["???", "operator new(unsigned long)", "main"]
        );
    }

    #[test]
    fn a_stack_of_nothing_but_allocator_frames_is_kept_whole() {
        let mut frames = vec![named("operator new(unsigned long)"), named("__rust_alloc")];
        drop_leading_allocator_frames(&mut frames);
        assert_eq!(
            names(&frames),
            ["operator new(unsigned long)", "__rust_alloc"]
        );
    }

    #[test]
    fn a_stack_with_no_allocator_frames_is_untouched() {
        let mut frames = vec![named("strdup"), named("copy_name"), named("main")];
        drop_leading_allocator_frames(&mut frames);
        assert_eq!(names(&frames), ["strdup", "copy_name", "main"]);
    }
}
