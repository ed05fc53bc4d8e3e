//! Matching a function named in a fixture header against the names tools print.
//!
//! memcheck and leakscope print C++ functions demangled with their parameters
//! (`make_tree(int)`, `Foo::bar(int) const`), GCC clones with a suffix (`f.constprop.0`,
//! `f(int) [clone .isra.0]`), versioned glibc symbols (`pthread_create@@GLIBC_2.34`) and Rust
//! functions as paths, sometimes with a hash or a crate disambiguator
//! (`box_leak::leak_it::h0123456789abcdef`, `box_leak[1a2b3c]::leak_it`). A header names the
//! function without any of that: `make_tree`, `Foo::bar`, `box_leak::leak_it`, or just `leak_it`.

/// Reduces a printed function name to its bare path: no parameters, qualifiers, clone suffixes,
/// symbol versions, Rust hashes or disambiguators.
pub fn normalize(printed: &str) -> String {
    let mut name = printed.trim();
    // GCC clones as printed by a demangler: "f(int) [clone .constprop.0]".
    while let Some(i) = name.rfind(" [clone ") {
        if !name.ends_with(']') {
            break;
        }
        name = name[..i].trim_end();
    }
    // Symbol versions: "pthread_create@@GLIBC_2.34", "memcpy@GLIBC_2.2.5".
    if let Some(i) = name.find('@') {
        name = &name[..i];
    }
    let mut name = strip_parameters(name).to_string();
    // Clone suffixes left in raw symbol names: "f.constprop.0", "f.isra.0", "f.part.0", "f.cold".
    for marker in [".constprop.", ".isra.", ".part.", ".cold", ".lto_priv."] {
        if let Some(i) = name.find(marker) {
            name.truncate(i);
        }
    }
    // Rust legacy hash: "::h" followed by 16 hex digits at the end.
    if let Some(i) = name.rfind("::h") {
        let hash = &name[i + 3..];
        if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            name.truncate(i);
        }
    }
    // Rust v0 crate disambiguators: "krate[1a2b3c]::f".
    let mut out = String::with_capacity(name.len());
    let mut rest = name.as_str();
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|c| open + c);
        match close {
            Some(close) if rest[open + 1..close].chars().all(|c| c.is_ascii_hexdigit()) => {
                out.push_str(&rest[..open]);
                rest = &rest[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes a trailing parameter list and the qualifiers after it: "ns::f(int, char*) const" ->
/// "ns::f". Parentheses inside template arguments or in `operator()` are respected.
fn strip_parameters(name: &str) -> &str {
    let mut end = name.trim_end();
    loop {
        let before = end;
        for qualifier in [" const", " volatile", " &&", " &", " noexcept"] {
            if let Some(stripped) = end.strip_suffix(qualifier) {
                end = stripped.trim_end();
            }
        }
        if end == before {
            break;
        }
    }
    if !end.ends_with(')') {
        return name.trim_end();
    }
    let mut depth = 0usize;
    for (i, c) in end.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let head = &end[..i];
                    // "operator()" is a name, not a parameter list.
                    if head.ends_with("operator") {
                        return end;
                    }
                    return head.trim_end();
                }
            }
            _ => {}
        }
    }
    name.trim_end()
}

/// Does the printed function name denote `wanted`? Equal after normalization, or equal to its
/// last `::`-separated components (so `leak_it` matches `box_leak::leak_it`).
pub fn matches(printed: &str, wanted: &str) -> bool {
    let name = normalize(printed);
    let wanted = wanted.trim();
    name == wanted
        || name
            .strip_suffix(wanted)
            .is_some_and(|head| head.ends_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_names_are_normalized() {
        for (printed, bare) in [
            ("process_request", "process_request"),
            ("make_tree(int)", "make_tree"),
            ("Foo::bar(int) const", "Foo::bar"),
            ("make_session(long) [clone .constprop.0]", "make_session"),
            ("leak_one.constprop.0", "leak_one"),
            ("f.part.0.cold", "f"),
            ("pthread_create@@GLIBC_2.34", "pthread_create"),
            ("box_leak::leak_it::h0123456789abcdef", "box_leak::leak_it"),
            ("box_leak[1a2b3c4d]::leak_it", "box_leak::leak_it"),
            (
                "std::vector<int, std::allocator<int> >::vector(unsigned long, int const&)",
                "std::vector<int, std::allocator<int> >::vector",
            ),
            ("Functor::operator()(int)", "Functor::operator()"),
        ] {
            assert_eq!(normalize(printed), bare, "normalize({printed:?})");
        }
    }

    #[test]
    fn names_match_on_path_suffixes() {
        assert!(matches("make_tree(int)", "make_tree"));
        assert!(matches("rust_box_leak::leak_it", "rust_box_leak::leak_it"));
        assert!(matches("rust_box_leak::leak_it", "leak_it"));
        assert!(matches("ns::inner::f(char)", "inner::f"));
        assert!(!matches("make_tree_fast(int)", "make_tree"));
        assert!(!matches("xmake_tree", "make_tree"));
        assert!(!matches("rust_box_leak::leak_it", "box_leak::leak_it"));
        assert!(!matches("malloc", "make_tree"));
    }
}
