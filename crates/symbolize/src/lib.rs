//! Addresses to function, file, line and inlined frames, offline, in the CLI process.
//!
//! # Design constraints
//!
//! - **Best effort.** A module that cannot be read, has changed since the run, or has no
//!   symbols costs its own frames their names, nothing more: those frames still carry the
//!   module path and the offset into it (reports print `module+0xoffset`), and a note says why
//!   ([`Symbolizer::notes`]). Symbolization never fails a report.
//! - **The file that ran, or none.** When the profile recorded a module's GNU build id and the
//!   file on disk now has another, its symbols would name the wrong functions; they are not
//!   used. A separate debug file found by that build id is still used, as it is the right one
//!   by construction.
//! - **Batch per module.** All addresses of one module are looked up in one call, and parsed
//!   debug info is cached, so each file's debug info is parsed once per [`Symbolizer`].
//! - **Reports start at the program's call.** Leading frames inside `operator new` and the Rust
//!   allocator are dropped (see `allocator_frames.rs`); what is left starts at the program's
//!   call to `malloc`, `new` or `Vec::push`.
//! - **JIT code by the JVM's word.** An address in no module may lie in a JVM's code cache:
//!   the perf maps `leakscope run` took ([`leakscope_format::JavaCode`]) name it
//!   (`long java.util.zip.Inflater.init(boolean)`, module [`JVM_CODE_CACHE`]).
//!
//! The lookups are done by blazesym (see `docs/decisions/0002-symbolization.md`).

mod allocator_frames;
mod sources;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Reason, Sym, Symbolized};
use leakscope_format::{Frame, InterpreterFrame, JavaCode, Module, Profile, StackFrame, StackId};

use allocator_frames::drop_leading_allocator_frames;
pub use sources::DEFAULT_DEBUG_DIRS;
use sources::{symbol_sources, SymbolSource};

/// What a frame in a JVM's code cache gives as its module: no file holds the code.
pub const JVM_CODE_CACHE: &str = "[JVM code cache]";

/// The address ranges, `[start, end)` in the file's own virtual addresses (add a module's
/// load bias for where they ran), of the functions of the ELF file at `path` whose symbol
/// names start with `prefix` (as the symbol table spells them: mangled). Used to recognise a
/// runtime's instrument by its code (V8's sampling heap profiler in node): an error if the
/// file cannot be read.
pub fn function_ranges(path: &std::path::Path, prefix: &str) -> Result<Vec<(u64, u64)>, String> {
    use blazesym::inspect::{
        source::Elf as InspectElf, source::Source as InspectSource, Inspector,
    };
    use blazesym::SymType;
    let inspector = Inspector::new();
    let mut source = InspectElf::new(path);
    source.debug_syms = false;
    let mut ranges = Vec::new();
    inspector
        .for_each(&InspectSource::Elf(source), |symbol| {
            if symbol.sym_type == SymType::Function && symbol.name.starts_with(prefix) {
                let size = symbol.size.unwrap_or(0).max(1) as u64;
                ranges.push((symbol.addr, symbol.addr + size));
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| format!("cannot read the symbols of '{}': {e}", path.display()))?;
    ranges.sort_unstable();
    Ok(ranges)
}

/// Symbolizes the stacks of a profile.
///
/// Keep one for a whole run of the CLI: parsed files are cached, so the stacks of a parent and
/// its children, which share most libraries, are cheap to symbolize after the first.
pub struct Symbolizer {
    resolver: blazesym::symbolize::Symbolizer,
    debug_dirs: Vec<PathBuf>,
    notes: Vec<String>,
}

impl Symbolizer {
    /// A symbolizer with empty caches that looks for separate debug info in
    /// [`DEFAULT_DEBUG_DIRS`].
    pub fn new() -> Self {
        Self::with_debug_dirs(DEFAULT_DEBUG_DIRS.iter().map(PathBuf::from))
    }

    /// A symbolizer that looks for separate debug info in `debug_dirs` (their `.build-id`
    /// subdirectories and, for `.gnu_debuglink`, the directories themselves), in that order.
    /// The directory of a module is always searched for its debug link first.
    pub fn with_debug_dirs<I>(debug_dirs: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<PathBuf>,
    {
        let debug_dirs: Vec<PathBuf> = debug_dirs.into_iter().map(Into::into).collect();
        let resolver = blazesym::symbolize::Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            .enable_demangling(true)
            .set_debug_dirs(Some(&debug_dirs))
            .build();
        Symbolizer {
            resolver,
            debug_dirs,
            notes: Vec::new(),
        }
    }

    /// Symbolize the given stacks of `profile`. Every requested stack gets an entry, even if
    /// nothing about it could be resolved: a stack the profile does not hold (such as stack 0,
    /// "no stack recorded") gets an empty list.
    ///
    /// Each return address becomes one frame, or several where functions were inlined at
    /// that address (innermost first, `inlined: true`, then the function they were inlined
    /// into). Each interpreter frame becomes one frame of its kind, with the function, file
    /// and line its runtime gave. Leading allocator frames are dropped.
    pub fn symbolize(
        &mut self,
        profile: &Profile,
        stacks: &[StackId],
    ) -> BTreeMap<StackId, Vec<Frame>> {
        let mut addresses_by_module: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
        for stack in stacks {
            let frames = profile.stacks.get(stack).into_iter().flatten();
            for address in frames.filter_map(|frame| frame.address()) {
                if let Some(index) = module_index(&profile.modules, address) {
                    addresses_by_module
                        .entry(index)
                        .or_default()
                        .insert(address);
                }
            }
        }

        let mut frames_by_address: HashMap<u64, Vec<Frame>> = HashMap::new();
        for (index, addresses) in addresses_by_module {
            let addresses: Vec<u64> = addresses.into_iter().collect();
            let resolved = self.resolve_module(&profile.modules[index], &addresses);
            frames_by_address.extend(addresses.into_iter().zip(resolved));
        }

        let code_cache = CodeCache::new(&profile.java.code);
        stacks
            .iter()
            .map(|&stack| {
                let mut frames: Vec<Frame> = profile
                    .stacks
                    .get(&stack)
                    .into_iter()
                    .flatten()
                    .flat_map(|&frame| match frame {
                        StackFrame::Native(address) => match frames_by_address.get(&address) {
                            Some(frames) => frames.clone(),
                            None => vec![code_cache.frame(address)],
                        },
                        StackFrame::Interpreter(kind, id) => {
                            vec![interpreter_frame(kind, profile.frames.get(&id))]
                        }
                        // The reader resolves every code location into an interned frame.
                        StackFrame::PythonCode { .. } => {
                            vec![interpreter_frame(leakscope_format::FrameKind::Python, None)]
                        }
                    })
                    .collect();
                drop_leading_allocator_frames(&mut frames);
                (stack, frames)
            })
            .collect()
    }

    /// [`Symbolizer::symbolize`] for each profile of a run: `stacks[i]` are the stacks to
    /// symbolize in `profiles[i]` (modules shared between the profiles are read once).
    pub fn symbolize_each(
        &mut self,
        profiles: &[&Profile],
        stacks: &[Vec<StackId>],
    ) -> Vec<BTreeMap<StackId, Vec<Frame>>> {
        profiles
            .iter()
            .zip(stacks)
            .map(|(profile, stacks)| self.symbolize(profile, stacks))
            .collect()
    }

    /// What the reader should know about the symbols: modules that could not be read, had
    /// changed since the run, or had no debug info readable. One note per module and problem,
    /// in the order they were met, across every call to [`Symbolizer::symbolize`].
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Frames for `addresses`, all inside `module`, in the same order.
    ///
    /// The sources are tried best first (see [`symbol_sources`]); an address whose lookup
    /// failed with an error in one source is tried again in the next, so that damaged debug
    /// info still leaves the symbol table's names.
    fn resolve_module(&mut self, module: &Module, addresses: &[u64]) -> Vec<Vec<Frame>> {
        // A return address is the instruction after the call; the call itself, whose line
        // and inlining the user wants, ends one byte earlier.
        let lookup_offsets: Vec<u64> = addresses
            .iter()
            .map(|address| address.wrapping_sub(module.load_bias).wrapping_sub(1))
            .collect();
        let module_file_change = module_file_change(module);

        let mut resolved: Vec<Option<Vec<Frame>>> = vec![None; addresses.len()];
        let mut debug_info_error = None;
        let mut last_error = None;
        let mut resolved_without_debug_info = false;
        for source in symbol_sources(module, &self.debug_dirs) {
            let is_module_file = source.path.as_os_str() == module.path.as_str();
            if is_module_file && module_file_change.is_some() {
                continue;
            }
            let pending: Vec<usize> = (0..addresses.len())
                .filter(|&index| resolved[index].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let offsets: Vec<u64> = pending.iter().map(|&index| lookup_offsets[index]).collect();
            let outcome = match self.lookup(&source, &offsets) {
                Ok(symbols) => {
                    let mut failed = 0;
                    for (&index, symbol) in pending.iter().zip(&symbols) {
                        if matches!(symbol, Symbolized::Unknown(Reason::IgnoredError)) {
                            failed += 1;
                        } else {
                            resolved[index] = Some(frames_for(addresses[index], module, symbol));
                            resolved_without_debug_info |= !source.debug_info;
                        }
                    }
                    match failed {
                        0 => Ok(()),
                        _ => Err(format!(
                            "lookup failed for {failed} of {} addresses",
                            offsets.len()
                        )),
                    }
                }
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                if is_module_file && source.debug_info {
                    debug_info_error = Some(error.clone());
                }
                last_error = Some(error);
            }
        }

        if resolved.iter().any(Option::is_none) {
            if let Some(change) = module_file_change {
                self.note(format!(
                    "{} has changed since the run ({change}); its frames show as module+offset",
                    module.path
                ));
            } else if let Some(error) = last_error {
                self.note(format!(
                    "could not read symbols from {} ({error}); its frames show as module+offset",
                    module.path
                ));
            }
        } else if let (true, Some(error)) = (resolved_without_debug_info, debug_info_error) {
            self.note(format!(
                "could not read the debug info of {} ({error}); its frames show function names \
                 only",
                module.path
            ));
        }
        addresses
            .iter()
            .zip(resolved)
            .map(|(&address, frames)| frames.unwrap_or_else(|| vec![module_frame(address, module)]))
            .collect()
    }

    /// Symbols for `offsets` (addresses in the file's own address space) from one source.
    fn lookup<'slf>(
        &'slf self,
        source: &SymbolSource,
        offsets: &[u64],
    ) -> Result<Vec<Symbolized<'slf>>, String> {
        // blazesym opens a file lazily and folds errors met while reading it into "unknown
        // address", so make sure first that it is an ELF file at all: a missing or foreign
        // file must read as an error, for the note and for the next source to be tried.
        blazesym::helper::read_elf_build_id(&source.path).map_err(|error| error.to_string())?;
        let mut elf = Elf::new(&source.path);
        elf.debug_syms = source.debug_info;
        self.resolver
            .symbolize(&Source::Elf(elf), Input::VirtOffset(offsets))
            .map_err(|error| error.to_string())
    }

    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

/// How the file at `module.path` differs from the one that ran, if it was replaced since:
/// only a build id that was recorded and now differs says so. A file that cannot be read is
/// left for the lookup to report.
fn module_file_change(module: &Module) -> Option<String> {
    if module.build_id.is_empty() {
        return None;
    }
    let build_id_now = blazesym::helper::read_elf_build_id(&module.path).ok()?;
    let build_id_now = build_id_now.map(|id| id.into_owned()).unwrap_or_default();
    if build_id_now == module.build_id {
        return None;
    }
    let now = if build_id_now.is_empty() {
        "none".to_owned()
    } else {
        hex(&build_id_now)
    };
    Some(format!(
        "build id {} then, {now} now",
        hex(&module.build_id)
    ))
}

/// The first module whose mapping holds `address`.
fn module_index(modules: &[Module], address: u64) -> Option<usize> {
    modules.iter().position(|module| module.contains(address))
}

/// The frames for one return address: inlined callees innermost first, then the function
/// they were inlined into. All share the return address.
fn frames_for(address: u64, module: &Module, symbol: &Symbolized<'_>) -> Vec<Frame> {
    let Symbolized::Sym(sym) = symbol else {
        return vec![module_frame(address, module)];
    };
    // blazesym lists inlined functions outermost first, each with the location inside it
    // (the innermost's is the address's own line); the outer function's location is the call
    // site of the first inlined function.
    let mut frames: Vec<Frame> = sym
        .inlined
        .iter()
        .rev()
        .map(|inlined| Frame {
            function: function_name(&inlined.name),
            file: inlined.code_info.as_ref().map(file_of),
            line: inlined
                .code_info
                .as_ref()
                .and_then(|info| known_line(info.line)),
            inlined: true,
            ..module_frame(address, module)
        })
        .collect();
    frames.push(outer_frame(address, module, sym));
    frames
}

fn outer_frame(address: u64, module: &Module, sym: &Sym<'_>) -> Frame {
    Frame {
        function: function_name(&sym.name),
        file: sym.code_info.as_deref().map(file_of),
        line: sym
            .code_info
            .as_ref()
            .and_then(|info| known_line(info.line)),
        ..module_frame(address, module)
    }
}

/// A frame that knows only which module holds the address.
fn module_frame(address: u64, module: &Module) -> Frame {
    Frame {
        address,
        module: Some(module.path.clone()),
        module_offset: address.checked_sub(module.load_bias),
        ..Frame::default()
    }
}

/// The blobs of a JVM's code cache, ordered by start, to name frames in JIT-compiled code.
struct CodeCache<'a> {
    blobs: Vec<&'a JavaCode>,
    /// The largest blob's size: no blob starting further below an address holds it.
    largest: u64,
}

impl<'a> CodeCache<'a> {
    fn new(code: &'a [JavaCode]) -> Self {
        let mut blobs: Vec<&JavaCode> = code.iter().collect();
        blobs.sort();
        let largest = blobs.iter().map(|blob| blob.size).max().unwrap_or(0);
        CodeCache { blobs, largest }
    }

    /// The frame for a return address in no module: named by the blobs that held it, else
    /// only its address. Space the code cache freed and reused can have held several blobs
    /// during the run; the frame names each (`a or b`), since the profile cannot tell which
    /// one the stack was in.
    fn frame(&self, address: u64) -> Frame {
        // The call ends one byte before the return address, which may be the blob's end.
        let call = address.saturating_sub(1);
        let below = self.blobs.partition_point(|blob| blob.start <= call);
        let mut names: Vec<&str> = self.blobs[..below]
            .iter()
            .rev()
            .take_while(|blob| call - blob.start < self.largest)
            .filter(|blob| call - blob.start < blob.size)
            .map(|blob| blob.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return unmapped_frame(address);
        }
        Frame {
            address,
            function: Some(names.join(" or ")),
            module: Some(JVM_CODE_CACHE.to_owned()),
            ..Frame::default()
        }
    }
}

/// A frame for an address that lies in no recorded module and no known JIT code (a module
/// unmapped before the profile listed it, code no perf map listed).
fn unmapped_frame(address: u64) -> Frame {
    Frame {
        address,
        ..Frame::default()
    }
}

/// The frame for an interpreter frame (`None`: the profile does not hold the interned frame,
/// which only a damaged file can do: the frame shows its kind and nothing else).
fn interpreter_frame(
    kind: leakscope_format::FrameKind,
    interned: Option<&InterpreterFrame>,
) -> Frame {
    let Some(interned) = interned else {
        return Frame {
            kind,
            ..Frame::default()
        };
    };
    let known = |text: &str| (!text.is_empty()).then(|| text.to_string());
    Frame {
        kind,
        function: known(&interned.function),
        file: known(&interned.file),
        line: (interned.line != 0).then_some(interned.line),
        ..Frame::default()
    }
}

fn file_of(code_info: &blazesym::symbolize::CodeInfo<'_>) -> String {
    code_info.to_path().to_string_lossy().into_owned()
}

/// DWARF's line 0 means "no source line" (code the compiler made up), not a line.
fn known_line(line: Option<u32>) -> Option<u32> {
    line.filter(|&line| line != 0)
}

/// The name to show for a function, or `None` for an empty one. glibc's debug info names
/// many functions by their internal aliases (`__GI___strdup`, `__GI_getaddrinfo`); the `__GI_`
/// prefix means nothing to the reader and is left off.
fn function_name(name: &str) -> Option<String> {
    let name = name.strip_prefix("__GI_").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str, start: u64, end: u64) -> Module {
        Module {
            load_bias: start,
            start,
            end,
            path: path.to_owned(),
            build_id: Vec::new(),
        }
    }

    fn natives(addresses: &[u64]) -> Vec<StackFrame> {
        addresses.iter().map(|&a| StackFrame::Native(a)).collect()
    }

    #[test]
    fn a_mixed_stack_gives_interpreter_frames_their_function_file_and_line() {
        use leakscope_format::FrameKind;
        let mut profile = Profile::default();
        profile.frames.insert(
            4,
            InterpreterFrame {
                id: 4,
                kind: FrameKind::Python,
                function: "process_request".into(),
                file: "job.py".into(),
                line: 12,
                column: 5,
                identity: 0x7f00_1000,
            },
        );
        profile.frames.insert(
            9,
            InterpreterFrame {
                id: 9,
                kind: FrameKind::Java,
                function: "Main.run".into(),
                file: String::new(),
                line: 0,
                column: 0,
                identity: 0,
            },
        );
        profile.stacks.insert(
            1,
            vec![
                StackFrame::Native(0x9999),
                StackFrame::Interpreter(FrameKind::Python, 4),
                StackFrame::Interpreter(FrameKind::Java, 9),
                StackFrame::Interpreter(FrameKind::JavaScript, 77), // not interned
            ],
        );
        let frames = Symbolizer::new().symbolize(&profile, &[1]);
        assert_eq!(
            frames[&1],
            [
                unmapped_frame(0x9999),
                Frame {
                    kind: FrameKind::Python,
                    function: Some("process_request".into()),
                    file: Some("job.py".into()),
                    line: Some(12),
                    ..Frame::default()
                },
                Frame {
                    kind: FrameKind::Java,
                    function: Some("Main.run".into()),
                    ..Frame::default()
                },
                Frame {
                    kind: FrameKind::JavaScript,
                    ..Frame::default()
                },
            ]
        );
    }

    #[test]
    fn stacks_the_profile_lacks_get_an_empty_entry() {
        let profile = Profile::default();
        let frames = Symbolizer::new().symbolize(&profile, &[0, 7]);
        assert_eq!(frames.len(), 2);
        assert!(frames[&0].is_empty());
        assert!(frames[&7].is_empty());
    }

    #[test]
    fn an_address_outside_every_module_keeps_only_its_address() {
        let mut profile = Profile::default();
        profile
            .modules
            .push(module("/nonexistent/lib.so", 0x1000, 0x2000));
        profile.stacks.insert(1, natives(&[0x9999]));
        let frames = Symbolizer::new().symbolize(&profile, &[1]);
        assert_eq!(frames[&1], [unmapped_frame(0x9999)]);
        assert_eq!(frames[&1][0].module, None);
    }

    #[test]
    fn an_address_in_the_jvm_code_cache_is_named_by_its_blobs() {
        let blob = |start: u64, size: u64, name: &str| JavaCode {
            start,
            size,
            name: name.to_owned(),
        };
        let mut profile = Profile::default();
        profile.java.code = vec![
            blob(0x5000, 0x100, "void Main.run()"),
            blob(0x1000, 0x4000, "Interpreter"),
            // Freed and reused: two methods held 0x6000..0x6040 during the run.
            blob(0x6000, 0x80, "long Inflater.init(boolean)"),
            blob(0x6000, 0x40, "int Main.hash(java.lang.Object)"),
        ];
        profile.stacks.insert(
            1,
            natives(&[0x5080, 0x4fff, 0x6010, 0x6050, 0x5100, 0x9999, 0x1000]),
        );
        let frames = Symbolizer::new().symbolize(&profile, &[1]);
        let names: Vec<Option<&str>> = frames[&1]
            .iter()
            .map(|frame| frame.function.as_deref())
            .collect();
        assert_eq!(
            names,
            [
                Some("void Main.run()"),
                Some("Interpreter"),
                Some("int Main.hash(java.lang.Object) or long Inflater.init(boolean)"),
                Some("long Inflater.init(boolean)"),
                // A return address just past a blob's end is a call at its last byte.
                Some("void Main.run()"),
                None,
                // The first byte of a blob cannot be a return address into it.
                None,
            ]
        );
        assert_eq!(frames[&1][0].module.as_deref(), Some(JVM_CODE_CACHE));
        assert_eq!(frames[&1][0].module_offset, None);
        assert_eq!(frames[&1][5], unmapped_frame(0x9999));
    }

    #[test]
    fn an_unreadable_module_gives_module_and_offset_and_one_note() {
        let mut profile = Profile::default();
        profile
            .modules
            .push(module("/nonexistent/libgone.so", 0x7000_0000, 0x7010_0000));
        profile
            .stacks
            .insert(1, natives(&[0x7000_1234, 0x7000_5678]));
        profile.stacks.insert(2, natives(&[0x7000_1234]));
        let mut symbolizer = Symbolizer::new();
        let frames = symbolizer.symbolize(&profile, &[1, 2]);
        let first = &frames[&1][0];
        assert_eq!(first.address, 0x7000_1234);
        assert_eq!(first.function, None);
        assert_eq!(first.module.as_deref(), Some("/nonexistent/libgone.so"));
        assert_eq!(first.module_offset, Some(0x1234));
        assert_eq!(frames[&1][1].module_offset, Some(0x5678));
        assert_eq!(frames[&2], frames[&1][..1]);
        assert_eq!(symbolizer.notes().len(), 1, "{:?}", symbolizer.notes());
        assert!(symbolizer.notes()[0].contains("/nonexistent/libgone.so"));
    }

    #[test]
    fn glibc_internal_aliases_lose_their_prefix() {
        assert_eq!(function_name("__GI___strdup").as_deref(), Some("__strdup"));
        assert_eq!(
            function_name("__GI_getaddrinfo").as_deref(),
            Some("getaddrinfo")
        );
        assert_eq!(
            function_name("process_request").as_deref(),
            Some("process_request")
        );
        assert_eq!(function_name(""), None);
    }

    #[test]
    fn the_first_module_holding_an_address_wins() {
        let modules = [module("/a", 0x1000, 0x2000), module("/b", 0x1800, 0x3000)];
        assert_eq!(module_index(&modules, 0x1900), Some(0));
        assert_eq!(module_index(&modules, 0x2000), Some(1));
        assert_eq!(module_index(&modules, 0x3000), None);
        assert_eq!(module_index(&modules, 0x0fff), None);
    }
}
