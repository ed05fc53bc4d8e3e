//! Addresses to function, file, line and inlined frames, offline, in the CLI process.

use std::collections::BTreeMap;

use leakscope_format::{Frame, Profile, StackId};

/// Symbolizes the stacks of a profile.
pub struct Symbolizer {}

impl Symbolizer {
    /// A symbolizer with empty caches.
    pub fn new() -> Self {
        Symbolizer {}
    }

    /// Symbolize the given stacks of `profile`. Every requested stack gets an entry, even if
    /// nothing about it could be resolved.
    pub fn symbolize(&mut self, profile: &Profile, stacks: &[StackId]) -> BTreeMap<StackId, Vec<Frame>> {
        let _ = (profile, stacks);
        todo!("helper implements")
    }
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}
