//! `Errno`: a kernel error number as data (never a harness failure), with names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kernel errno value, compared with `==` and printed by name (`EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

const NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENOTDIR", libc::ENOTDIR),
    ("EINVAL", libc::EINVAL),
    ("EMFILE", libc::EMFILE),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ERANGE", libc::ERANGE),
    ("ENOSYS", libc::ENOSYS),
    ("EUSERS", libc::EUSERS),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
];

#[allow(missing_docs)]
impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EINTR: Errno = Errno(libc::EINTR);
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EMFILE: Errno = Errno(libc::EMFILE);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const ECHILD: Errno = Errno(libc::ECHILD);
    pub const EUSERS: Errno = Errno(libc::EUSERS);
    pub const EEXIST: Errno = Errno(libc::EEXIST);

    /// The symbolic name, if known.
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(_, v)| *v == self.0).map(|(n, _)| *n)
    }

    /// Parses `EINVAL` or a number (`22`, `E22`).
    pub fn parse(s: &str) -> Option<Errno> {
        let t = s.trim();
        if let Some((_, v)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
            return Some(Errno(*v));
        }
        let digits = t.strip_prefix('E').unwrap_or(t);
        digits.parse::<i32>().ok().filter(|v| *v > 0).map(Errno)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "E{}", self.0),
        }
    }
}

impl Serialize for Errno {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Errno {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Errno::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown errno {s:?} (expected a name such as EINVAL or a number)"))
        })
    }
}

/// The result of one system call: success, or failure with an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallResult {
    /// Returned 0.
    Success,
    /// Returned -1 with this errno.
    Failure(Errno),
}

impl CallResult {
    /// True for `Success`.
    pub fn is_success(self) -> bool {
        matches!(self, CallResult::Success)
    }
}

impl fmt::Display for CallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallResult::Success => f.write_str("success"),
            CallResult::Failure(e) => write!(f, "{e}"),
        }
    }
}

impl Serialize for CallResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CallResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("success") || s == "0" {
            return Ok(CallResult::Success);
        }
        Errno::parse(&s).map(CallResult::Failure).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "bad result {s:?} (expected \"success\" or an errno name such as \"EINVAL\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (n, v) in NAMES {
            assert_eq!(Errno(*v).to_string(), *n);
            assert_eq!(Errno::parse(n), Some(Errno(*v)));
        }
        assert_eq!(Errno(4000).to_string(), "E4000");
        assert_eq!(Errno::parse("E4000"), Some(Errno(4000)));
        let r: CallResult = serde_json::from_str("\"ENOSPC\"").unwrap();
        assert_eq!(r, CallResult::Failure(Errno::ENOSPC));
        assert!(serde_json::from_str::<CallResult>("\"EWHAT\"").is_err());
    }
}
