//! Symbolization of real binaries: small C, C++ and Rust programs compiled at test time, with
//! addresses read from their own disassembly and symbol tables.

mod harness;

mod c_programs;
mod cxx_programs;
mod debug_files;
mod rust_programs;
