//! Reports: the human summary and the JSON document of a run. Every format
//! starts with the environment, including any restriction on unshare.

pub mod human;
pub mod json;
