// Symbolization fixture for Rust: a Vec that grows through RawVec and a Box, so that the
// allocator shims and alloc::raw_vec internals sit below the program's own functions.
#[inline(never)]
pub fn make_buffer(count: usize) -> Vec<u8> {
    let mut buffer = Vec::new();
    for index in 0..count {
        buffer.push(index as u8); // @push
    }
    buffer
}

fn main() {
    let buffer = make_buffer(100);
    let boxed = Box::new(5u64);
    std::process::exit(if buffer.len() as u64 + *boxed == 105 { 0 } else { 1 });
}
