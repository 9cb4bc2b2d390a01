//! Fuzz target `model`: bytes -> case -> the model only; checks the model's laws, never panics otherwise.
#![no_main]
libfuzzer_sys::fuzz_target!(init: unshare_fuzz::command::fuzzing::init(), |data: &[u8]| unshare_fuzz::command::fuzzing::model_laws(data));
