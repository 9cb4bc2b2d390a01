//! Fuzz target `corpus_format`: bytes -> the corpus-file parser; never panics, clean errors only.
#![no_main]
libfuzzer_sys::fuzz_target!(init: unshare_fuzz::command::fuzzing::init(), |data: &[u8]| unshare_fuzz::command::fuzzing::corpus_file(data));
