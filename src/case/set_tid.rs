//! `SetTidStep`: a clone3 step that asks for chosen pids (`clone_args.set_tid` and
//! `set_tid_size`, issue 16 class 4). The list names the pid wanted in each pid namespace the
//! child will be in, innermost first; `set_tid_size` is passed as written, so a size without a
//! list, a list with size 0, and sizes beyond the list (the executor's buffer holds zeros
//! there) or beyond the kernel's 32 levels are all expressible.
//!
//! ```json
//! {"clone3_set_tid": {"flags": "NEWPID", "set_tid": [1, 1000], "set_tid_size": 2}}
//! ```
//!
//! `"set_tid": null` passes a null pointer; a missing `set_tid_size` is the list's length.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::abi::flags::RawFlags;

/// Most pids a step lists (the kernel takes up to 32; entries beyond the list read as 0).
pub const SET_TID_LISTED: usize = 4;
/// The executor's set_tid buffer: the kernel's `MAX_PID_NS_LEVEL` entries (a larger
/// `set_tid_size` is refused before the kernel reads the buffer).
pub const SET_TID_BUFFER: usize = 32;

/// A clone3 call with `set_tid` (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "SetTidJson", into = "SetTidJson")]
pub struct SetTidStep {
    /// clone3's flag word (as a plain clone3 step's).
    pub flags: RawFlags,
    /// `set_tid` is a null pointer.
    pub null: bool,
    /// How many of [`Self::tids`] are listed.
    pub len: u8,
    /// The listed pids, innermost pid namespace first; zeros beyond `len`.
    pub tids: [i32; SET_TID_LISTED],
    /// `clone_args.set_tid_size`.
    pub size: u32,
}

impl SetTidStep {
    /// A step with `flags` listing `tids` and a size equal to their number.
    ///
    /// # Panics
    /// With more than [`SET_TID_LISTED`] pids (a programming error in a caller's table).
    pub fn new(flags: u64, tids: &[i32]) -> SetTidStep {
        assert!(tids.len() <= SET_TID_LISTED, "at most {SET_TID_LISTED} set_tid entries");
        let mut t = [0; SET_TID_LISTED];
        t[..tids.len()].copy_from_slice(tids);
        SetTidStep { flags: RawFlags(flags), null: false, len: tids.len() as u8, tids: t, size: tids.len() as u32 }
    }

    /// The pid asked for at level `i` (0: the child's own pid namespace), as the kernel reads
    /// it: 0 beyond the list.
    pub fn tid(&self, i: usize) -> i32 {
        self.tids.get(i).copied().filter(|_| i < usize::from(self.len)).unwrap_or(0)
    }

    /// The listed pids.
    pub fn listed(&self) -> &[i32] {
        &self.tids[..usize::from(self.len).min(SET_TID_LISTED)]
    }
}

/// The JSON form of [`SetTidStep`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetTidJson {
    flags: RawFlags,
    set_tid: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set_tid_size: Option<u32>,
}

impl TryFrom<SetTidJson> for SetTidStep {
    type Error = String;
    fn try_from(j: SetTidJson) -> Result<SetTidStep, String> {
        let list = j.set_tid.as_deref().unwrap_or(&[]);
        if list.len() > SET_TID_LISTED {
            return Err(format!(
                "set_tid lists {} pids; at most {SET_TID_LISTED} can be listed (use set_tid_size for more levels)",
                list.len()
            ));
        }
        let mut s = SetTidStep::new(j.flags.0, list);
        s.null = j.set_tid.is_none();
        s.size = j.set_tid_size.unwrap_or(list.len() as u32);
        Ok(s)
    }
}

impl From<SetTidStep> for SetTidJson {
    fn from(s: SetTidStep) -> SetTidJson {
        let same = !s.null && s.size == u32::from(s.len);
        SetTidJson {
            flags: s.flags,
            set_tid: (!s.null).then(|| s.listed().to_vec()),
            set_tid_size: (!same).then_some(s.size),
        }
    }
}

impl fmt::Display for SetTidStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "clone3({}, set_tid ", self.flags)?;
        if self.null {
            f.write_str("NULL")?;
        } else {
            write!(f, "{:?}", self.listed())?;
        }
        write!(f, ", set_tid_size {})", self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Case, Step};

    #[test]
    fn json_names_the_list_and_a_size_only_when_it_differs() {
        let json = r#"{"steps":[{"clone3_set_tid":{"flags":"NEWPID","set_tid":[1,1000]}}]}"#;
        let case: Case = serde_json::from_str(json).unwrap();
        let want = SetTidStep::new(crate::abi::flags::bits::NEWPID, &[1, 1000]);
        assert_eq!(case.steps[0], Step::Clone3SetTid(want));
        assert_eq!(case.to_string(), "[root] clone3(NEWPID, set_tid [1, 1000], set_tid_size 2);");
        let back = serde_json::to_string(&case).unwrap();
        assert!(back.contains(r#"{"clone3_set_tid":{"flags":"NEWPID","set_tid":[1,1000]}}"#), "{back}");
        let null = r#"{"steps":[{"clone3_set_tid":{"flags":"0","set_tid":null,"set_tid_size":1}}]}"#;
        let case: Case = serde_json::from_str(null).unwrap();
        let Step::Clone3SetTid(s) = case.steps[0] else { panic!("{case}") };
        assert!(s.null && s.size == 1 && s.tid(0) == 0);
        assert!(serde_json::to_string(&case).unwrap().contains(r#""set_tid":null,"set_tid_size":1"#));
    }

    #[test]
    fn too_long_a_list_is_refused_with_the_limit() {
        let json = r#"{"steps":[{"clone3_set_tid":{"flags":"0","set_tid":[1,2,3,4,5]}}]}"#;
        let e = serde_json::from_str::<Case>(json).unwrap_err().to_string();
        assert!(e.contains("at most 4"), "{e}");
    }

    #[test]
    fn entries_beyond_the_list_read_as_zero() {
        let mut s = SetTidStep::new(0, &[7]);
        s.size = 3;
        assert_eq!((s.tid(0), s.tid(1), s.tid(2), s.tid(40)), (7, 0, 0, 0));
    }
}
