//! Fuzz target `exec`: bytes -> case -> the real kernel through the executor -> every invariant.
#![no_main]
libfuzzer_sys::fuzz_target!(init: unshare_fuzz::command::fuzzing::init(), |data: &[u8]| unshare_fuzz::command::fuzzing::exec_case(data));
