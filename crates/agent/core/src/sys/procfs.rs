//! Every `/proc` file the agent reads, and their parsers: one parser of `/proc/self/maps` lines,
//! one of hexadecimal and one of decimal numbers. The parsers are pure (text in, values out)
//! so that they can be tested on given text.
//!
//! Bad input has one behaviour throughout: a number is read up to its first character that is
//! not a digit (none: 0) and saturates at `u64::MAX`; a line that does not have the fields a
//! parser needs is skipped (`None`); a file that cannot be read reads as empty.

use super::{read_file, TextBuffer};

/// The number in hexadecimal at the start of `text` (as `/proc` writes them: addresses in
/// `maps`, signal masks in `status`), up to its first other character; saturates at
/// `u64::MAX`.
pub fn parse_hex(text: &[u8]) -> u64 {
    let mut value = 0u64;
    for &c in text {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        if value > u64::MAX >> 4 {
            return u64::MAX;
        }
        value = (value << 4) | digit as u64;
    }
    value
}

/// The decimal number at the start of `text`, up to its first other character; saturates at
/// `u64::MAX`.
pub fn parse_decimal(text: &[u8]) -> u64 {
    text.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &b| {
            n.saturating_mul(10).saturating_add((b - b'0') as u64)
        })
}

/// One line of `/proc/self/maps`: `start-end perms offset dev inode [path]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `r`.
    pub readable: bool,
    /// `w`.
    pub writable: bool,
    /// `x`.
    pub executable: bool,
    /// Backed by a file (its inode is not 0).
    pub file_backed: bool,
    /// The path or pseudo-path (`[heap]`, `[stack]`), up to its first space; empty if none.
    pub path: &'a [u8],
}

/// Parse one line of `/proc/self/maps`; `None` if it lacks one of the five fields before the
/// path or its range has no `-`.
pub fn parse_maps_line(line: &[u8]) -> Option<MapsEntry<'_>> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or(b"");
    let dash = range.iter().position(|&b| b == b'-')?;
    let perm = |i: usize| perms.get(i).copied().unwrap_or(b'-');
    Some(MapsEntry {
        start: parse_hex(&range[..dash]),
        end: parse_hex(&range[dash + 1..]),
        readable: perm(0) == b'r',
        writable: perm(1) == b'w',
        executable: perm(2) == b'x',
        file_backed: inode != b"0",
        path,
    })
}

/// Every well-formed line of a `/proc/self/maps` text, in order.
pub fn maps_entries(text: &[u8]) -> impl Iterator<Item = MapsEntry<'_>> {
    text.split(|&b| b == b'\n').filter_map(parse_maps_line)
}

/// Read `/proc/self/maps` into `buf` (which must be large: the file of a big process runs to
/// megabytes); the length read (0 if unreadable).
pub fn read_maps(buf: &mut [u8]) -> usize {
    read_file(b"/proc/self/maps\0", buf).unwrap_or(0)
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` text, 0 if missing. The name (field 2) is in
/// parentheses and may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn stat_start_ticks(text: &[u8]) -> u64 {
    let Some(close) = text.iter().rposition(|&b| b == b')') else {
        return 0;
    };
    // After ") ": field 3 (state) is the first; starttime is field 22, the 20th.
    text[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(19)
        .map_or(0, parse_decimal)
}

/// When the process started, in clock ticks since boot (0 if unreadable).
pub fn kernel_start_ticks() -> u64 {
    let mut buf = [0u8; 1024];
    let len = read_file(b"/proc/self/stat\0", &mut buf).unwrap_or(0);
    stat_start_ticks(&buf[..len])
}

/// The resident pages of a `/proc/PID/statm` text (`size resident shared ...`), 0 if missing.
pub fn statm_resident_pages(text: &[u8]) -> u64 {
    text.split(|&b| b == b' ').nth(1).map_or(0, parse_decimal)
}

/// The process's resident set size (0 if unreadable).
pub fn resident_bytes() -> u64 {
    let mut buf = [0u8; 256];
    let len = read_file(b"/proc/self/statm\0", &mut buf).unwrap_or(0);
    statm_resident_pages(&buf[..len]) * super::PAGE as u64
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes (0 if missing).
pub fn meminfo_available_bytes(text: &[u8]) -> u64 {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"MemAvailable:"))
        .map_or(0, |rest| {
            parse_decimal(rest.trim_ascii_start()).saturating_mul(1024)
        })
}

/// The machine's available memory (0 if unknown).
pub fn available_memory_bytes() -> u64 {
    let mut buf = [0u8; 4096];
    let len = read_file(b"/proc/meminfo\0", &mut buf).unwrap_or(0);
    meminfo_available_bytes(&buf[..len])
}

/// Read `/proc/self/task/TID/<file>` into `out`; the length read.
fn read_task_file(tid: i32, file: &str, out: &mut [u8]) -> Option<usize> {
    let mut path = [0u8; 64];
    let mut text = TextBuffer::new(&mut path);
    text.push_str("/proc/self/task/");
    text.push_u64(tid as u64);
    text.push_str("/");
    text.push_str(file);
    text.push_str("\0");
    let len = text.len();
    read_file(&path[..len], out)
}

/// A thread's name (`/proc/self/task/TID/comm`, without the newline) in `out`; its length
/// (0 if unreadable).
pub fn thread_name(tid: i32, out: &mut [u8]) -> usize {
    let len = read_task_file(tid, "comm", out).unwrap_or(0);
    out[..len].iter().position(|&b| b == b'\n').unwrap_or(len)
}

/// The blocked-signal mask (`SigBlk:`, signal n is bit n - 1) of a `/proc/PID/status` text.
pub fn status_blocked_signals(text: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"SigBlk:"))
        .map(|mask| parse_hex(mask.trim_ascii()))
}

/// Thread `tid`'s blocked-signal mask (`None` if unreadable).
pub fn thread_blocked_signals(tid: i32) -> Option<u64> {
    let mut status = [0u8; 4096];
    let len = read_task_file(tid, "status", &mut status)?;
    status_blocked_signals(&status[..len])
}

/// Call `f` with the id of every thread of this process, from `/proc/self/task`.
pub fn for_each_task(mut f: impl FnMut(i32)) {
    // SAFETY: opening a directory read-only.
    let fd = unsafe {
        libc::open(
            c"/proc/self/task".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            break;
        }
        let mut at = 0usize;
        while at + 19 <= n as usize {
            let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &buf[at + 19..(at + reclen).min(n as usize)];
            let mut tid = 0i32;
            let mut digits = 0;
            for &b in name {
                if b.is_ascii_digit() {
                    tid = tid * 10 + (b - b'0') as i32;
                    digits += 1;
                } else {
                    break;
                }
            }
            if digits > 0 {
                f(tid);
            }
            at += reclen;
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
}

/// The path of the process's executable (`/proc/self/exe`) in `out`; its length (0 if
/// unreadable).
pub fn own_executable(out: &mut [u8]) -> usize {
    // SAFETY: the path is NUL-terminated; readlink writes at most `out.len()` bytes into `out`.
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            out.as_mut_ptr() as *mut libc::c_char,
            out.len(),
        )
    };
    n.max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &[u8] = b"\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1835076                    /usr/bin/cat
55d0c0a02000-55d0c0a07000 r-xp 00002000 fd:01 1835076                    /usr/bin/cat
55d0c1c5e000-55d0c1c7f000 rw-p 00000000 00:00 0                          [heap]
7f1e2a000000-7f1e2a021000 rw-p 00000000 00:00 0 
7f1e2b9f0000-7f1e2b9f1000 rw-s 00000000 00:05 1029                       /dev/zero (deleted)
7ffd6b8c5000-7ffd6b8e6000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn maps_lines_give_ranges_permissions_inode_and_path() {
        let entries: Vec<_> = maps_entries(MAPS).collect();
        assert_eq!(entries.len(), 7);
        assert_eq!(
            entries[1],
            MapsEntry {
                start: 0x55d0_c0a0_2000,
                end: 0x55d0_c0a0_7000,
                readable: true,
                writable: false,
                executable: true,
                file_backed: true,
                path: b"/usr/bin/cat",
            }
        );
        assert_eq!(
            entries[3],
            MapsEntry {
                start: 0x7f1e_2a00_0000,
                end: 0x7f1e_2a02_1000,
                readable: true,
                writable: true,
                executable: false,
                file_backed: false,
                path: b"",
            }
        );
        // A path with a space: its first word.
        assert_eq!(entries[4].path, b"/dev/zero");
        assert_eq!(entries[2].path, b"[heap]");
        assert_eq!(entries[6].start, 0xffff_ffff_ff60_0000);
        assert!(!entries[6].readable && entries[6].executable);
    }

    #[test]
    fn malformed_maps_lines_are_skipped() {
        assert_eq!(parse_maps_line(b""), None);
        assert_eq!(
            parse_maps_line(b"55d0c0a00000-55d0c0a02000 r--p 00000000"),
            None
        );
        assert_eq!(
            parse_maps_line(b"55d0c0a00000 r--p 00000000 fd:01 1835076 /bin/x"),
            None,
            "no dash in the range"
        );
        let text = b"garbage\n1000-2000 rw-p 0 00:00 0\n\nmore garbage here\n";
        let entries: Vec<_> = maps_entries(text).collect();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].start, entries[0].end), (0x1000, 0x2000));
    }

    #[test]
    fn the_real_maps_of_this_process_holds_its_own_stack() {
        let mut buf = vec![0u8; 8 << 20];
        let len = read_maps(&mut buf);
        let local = 0u64;
        let here = &local as *const u64 as u64;
        let holding: Vec<_> = maps_entries(&buf[..len])
            .filter(|e| e.start <= here && here < e.end)
            .collect();
        assert_eq!(holding.len(), 1, "one mapping holds a local variable");
        assert!(holding[0].readable && holding[0].writable);
    }

    #[test]
    fn numbers_stop_at_the_first_other_character_and_saturate() {
        assert_eq!(parse_hex(b"7ffd6b8c5000-"), 0x7ffd_6b8c_5000);
        assert_eq!(parse_hex(b"DeadBeef"), 0xdead_beef);
        assert_eq!(parse_hex(b""), 0);
        assert_eq!(parse_hex(b"xyz"), 0);
        assert_eq!(parse_hex(b"ffffffffffffffff"), u64::MAX);
        assert_eq!(parse_hex(b"1ffffffffffffffff"), u64::MAX);
        assert_eq!(parse_decimal(b"1234 kB"), 1234);
        assert_eq!(parse_decimal(b""), 0);
        assert_eq!(parse_decimal(b"-5"), 0);
        assert_eq!(parse_decimal(b"18446744073709551615"), u64::MAX);
        assert_eq!(parse_decimal(b"99999999999999999999999"), u64::MAX);
    }

    #[test]
    fn stat_statm_meminfo_and_status_fields() {
        // A name with spaces and a parenthesis: fields are counted after the last ')'.
        let stat =
            b"4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 10000 200";
        assert_eq!(stat_start_ticks(stat), 987_654);
        assert_eq!(stat_start_ticks(b"4242 (cut"), 0);
        assert_eq!(statm_resident_pages(b"2000 345 100 10 0 500 0\n"), 345);
        assert_eq!(statm_resident_pages(b""), 0);
        let meminfo =
            b"MemTotal:       16384000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(meminfo_available_bytes(meminfo), 8_000_000 * 1024);
        assert_eq!(meminfo_available_bytes(b"MemTotal: 1 kB\n"), 0);
        let status =
            b"Name:\tcat\nSigPnd:\t0000000000000000\nSigBlk:\t0000000000010002\nSigIgn:\t0\n";
        assert_eq!(status_blocked_signals(status), Some(0x10002));
        assert_eq!(status_blocked_signals(b"Name:\tcat\n"), None);
    }

    #[test]
    fn this_process_reads_as_itself() {
        assert!(kernel_start_ticks() > 0);
        assert!(resident_bytes() > 0);
        let mut name = [0u8; 64];
        let len = thread_name(super::super::gettid(), &mut name);
        assert!(len > 0 && !name[..len].contains(&b'\n'));
        assert!(thread_blocked_signals(super::super::gettid()).is_some());
    }
}
