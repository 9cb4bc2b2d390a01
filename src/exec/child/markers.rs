//! Namespace identity by behaviour. The executor makes, once, in its sandbox,
//! one marker per namespace type that lives in exactly one namespace of that
//! type: an abstract unix socket (network namespace) and a SysV shared memory
//! segment (IPC namespace). A case child reads them before its first step and
//! after its last, with the mount id of `/` (new in a copied mount
//! namespace), and so tells whether it is still in the namespaces it started
//! in without trusting `/proc/self/ns` links, which gVisor does not fill
//! reliably. The UTS namespace shows nothing without a write: after the last
//! step the child sets its hostname to [`UTS_MARKER`], and the executor, after
//! the case, reads its own hostname (the marker there means the caller was
//! still in the executor's UTS namespace, which every setup starts in) and
//! puts its own name back. The executor's UTS namespace is its sandbox's,
//! checked to be new before anything was written (or a throwaway kernel's).
//! `check::behaviour` judges the readings against the model.
//!
//! The executor side ([`Held`]) runs before cases are served; [`observe`] runs
//! in the case child and does not allocate.
//!
//! # Safety
//! The `unsafe` here sets the hostname: the case child's marker write (a disposable process,
//! after its last step) and the executor putting its own name back (the sandbox's verified UTS
//! namespace, between cases); and it brings the sandbox's loopback up (its verified network
//! namespace, once, before any case).

#![allow(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::abi::errno::Errno;
use crate::sys;
use crate::sys::marker::ABSTRACT_NAME_MAX;

use super::record::NONE;

/// What a case child needs to find the markers (copied into its plan, so it is in the child's
/// memory after fork).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Markers {
    /// The abstract socket's name (its first `net_len` bytes), or `net_len` 0 for none.
    net_name: [u8; ABSTRACT_NAME_MAX],
    net_len: usize,
    /// The shared memory segment's id, or -1 for none.
    shm_id: i32,
    /// The child writes the UTS marker (the executor reads its hostname back).
    uts: bool,
}

impl Default for Markers {
    fn default() -> Markers {
        Markers { net_name: [0; ABSTRACT_NAME_MAX], net_len: 0, shm_id: -1, uts: false }
    }
}

/// The hostname a case child sets after its last step.
pub const UTS_MARKER: &[u8] = b"unshare-fuzz-uts-marker";

/// The executor's markers, held for its lifetime.
#[derive(Debug)]
pub struct Held {
    /// What the case children are told.
    pub markers: Markers,
    /// The listening socket, if one could be made.
    listener: Option<OwnedFd>,
    /// Why a marker could not be made, one phrase each (for the environment's restrictions).
    pub missing: Vec<String>,
    /// The executor's own hostname (its first `hostname_len` bytes), put back after each case.
    hostname: [u8; 65],
    hostname_len: usize,
    /// The message queue marker of `inside` (life inside the IPC namespace), made by the
    /// executor in its sandbox ([`Held::make_inside`]), not by [`Held::create`],
    /// which also runs in unit tests, in the host's IPC namespace.
    pub inside: super::inside::InsideMarkers,
}

impl Held {
    /// Makes the markers in the executor's (verified) sandbox namespaces. A marker that cannot
    /// be made is left out and said in `missing`; its readings are then "not applicable".
    pub fn create() -> Held {
        let mut held = Held {
            markers: Markers::default(),
            listener: None,
            missing: Vec::new(),
            hostname: [0; 65],
            hostname_len: 0,
            inside: super::inside::InsideMarkers::default(),
        };
        // A name no other process in this network namespace holds: the sandbox's pid 1 has
        // pid 1 in every sandbox, so the clock makes it unique among executors that share one.
        let stamp = sys::monotonic_ns();
        for attempt in 0..4u64 {
            let name = format!("unshare-fuzz-ns-marker-{:016x}", stamp.wrapping_add(attempt));
            match sys::marker::listen_abstract(name.as_bytes(), 64) {
                Ok(fd) => {
                    held.markers.net_name[..name.len()].copy_from_slice(name.as_bytes());
                    held.markers.net_len = name.len();
                    held.listener = Some(fd);
                    break;
                }
                Err(Errno(libc::EADDRINUSE)) => continue,
                Err(e) => {
                    held.missing.push(format!("no network-namespace marker (abstract unix socket: {e})"));
                    break;
                }
            }
        }
        match sys::marker::shm_marker() {
            Ok(id) => held.markers.shm_id = id,
            Err(e) => held.missing.push(format!("no IPC-namespace marker (SysV shared memory: {e})")),
        }
        match sys::marker::hostname(&mut held.hostname) {
            Ok(n) if held.hostname[..n] != *UTS_MARKER => (held.hostname_len, held.markers.uts) = (n, true),
            Ok(_) => held.missing.push("no UTS-namespace marker (the hostname already is the marker)".into()),
            Err(e) => held.missing.push(format!("no UTS-namespace marker (gethostname: {e})")),
        }
        held
    }

    /// In the executor's sandbox, after [`Held::create`]: the message queue marker of
    /// `inside`, and, when the sandbox was verified new (`verified`), its loopback brought up,
    /// so that a case child that keeps that network namespace (one device up) and one in a new
    /// namespace (none up) differ by their devices. What fails is said in `missing`.
    pub fn make_inside(&mut self, verified: bool) {
        // A name no other process in this IPC namespace holds (as for the socket above).
        let stamp = sys::monotonic_ns();
        let mut made = false;
        for attempt in 0..4u64 {
            let name = format!("unshare-fuzz-mq-{:016x}", stamp.wrapping_add(attempt));
            match sys::inside::mq_create(name.as_bytes()) {
                Ok(()) => {
                    self.inside = super::inside::InsideMarkers::named(name.as_bytes());
                    made = true;
                    break;
                }
                Err(Errno(libc::EEXIST)) => continue,
                Err(e) => {
                    self.missing.push(format!("no POSIX message queue marker (mq_open: {e})"));
                    made = true;
                    break;
                }
            }
        }
        if !made {
            self.missing.push("no POSIX message queue marker (every name tried exists)".into());
        }
        // The directory the inside witness's caller mounts a tmpfs on (case::inside), in the
        // sandbox's private /tmp.
        if let Err(e) = sys::mkdir(crate::case::inside::INSIDE_MOUNT_DIR, 0o755) {
            self.missing.push(format!("no directory for the inside witness's mount (mkdir /tmp/uf-inside-mnt: {e})"));
        }
        if !verified {
            return;
        }
        // SAFETY: the executor, in its sandbox's network namespace, checked new before
        // anything was written.
        if let Err(e) = unsafe { sys::inside::loopback_up() } {
            self.missing.push(format!(
                "the sandbox's loopback stays down (SIOCSIFFLAGS: {e}): kept and new network namespaces differ only by the loopback's state"
            ));
        }
    }

    /// After a case: whether the UTS marker is now the executor's own hostname (1) or not (0),
    /// -errno when the hostname could not be read, [`NONE`] without the marker. The executor's
    /// name is put back whenever it changed.
    pub fn read_uts(&self) -> i32 {
        if !self.markers.uts {
            return NONE;
        }
        let mut now = [0u8; 65];
        match sys::marker::hostname(&mut now) {
            Ok(n) => {
                let own = &self.hostname[..self.hostname_len];
                if now[..n] != *own {
                    // Failing to restore leaves the marker, which the next case would read as
                    // "still shared": say so through the reading instead.
                    // SAFETY: the executor, in its sandbox's UTS namespace (checked new before
                    // anything was written), restoring the name it set there itself.
                    if let Err(e) = unsafe { sys::sethostname(own) } {
                        return -e.0;
                    }
                }
                i32::from(now[..n] == *UTS_MARKER)
            }
            Err(e) => -e.0,
        }
    }

    /// Descriptors the markers hold for the executor's lifetime.
    pub fn descriptors(&self) -> u64 {
        u64::from(self.listener.is_some())
    }

    /// Accepts and closes the connections the last case's readings left pending.
    pub fn drain(&self) {
        if let Some(fd) = &self.listener {
            sys::marker::drain_connections(fd);
        }
    }
}

/// One reading of the markers, encoded for a probe slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The network marker is reachable: 1, not: 0, unknown: -errno, none made: [`NONE`].
    pub net: i32,
    /// The IPC marker exists: 1, not: 0, unknown: -errno, none made: [`NONE`].
    pub ipc: i32,
    /// The mount id of `/`, or the errno that kept it unread.
    pub mnt: Result<u64, Errno>,
}

impl Default for Reading {
    fn default() -> Reading {
        Reading { net: NONE, ipc: NONE, mnt: Err(Errno(libc::ENODATA)) }
    }
}

impl Reading {
    /// The probe slot saying whether the mount id of `/` in `later` is the one of `self`.
    pub fn mnt_kept(&self, later: &Reading) -> i32 {
        match (self.mnt, later.mnt) {
            (Ok(a), Ok(b)) => i32::from(a == b),
            (Err(e), _) | (_, Err(e)) => -e.0,
        }
    }
}

/// Reads the markers in the calling process's current namespaces. Runs in the case child.
pub fn observe(m: &Markers) -> Reading {
    let net = if m.net_len == 0 {
        NONE
    } else {
        match sys::marker::connect_abstract(&m.net_name[..m.net_len]) {
            Ok(()) => 1,
            // Nothing listens on that name here: another network namespace.
            Err(Errno(libc::ECONNREFUSED)) => 0,
            Err(e) => -e.0,
        }
    };
    let ipc = if m.shm_id < 0 {
        NONE
    } else {
        match sys::marker::shm_exists(m.shm_id) {
            // EACCES: it exists, but our credentials (a new user namespace) may not read it.
            Ok(()) | Err(Errno(libc::EACCES)) => 1,
            // No segment of that id here: another IPC namespace.
            Err(Errno(libc::EINVAL)) => 0,
            Err(e) => -e.0,
        }
    };
    Reading { net, ipc, mnt: sys::marker::root_mount_id() }
}

/// Sets the hostname to [`UTS_MARKER`], for the executor to look for after the case: 1 when
/// set, -errno when not, [`NONE`] without the marker. Runs in the case child, last.
pub fn write_uts(m: &Markers) -> i32 {
    if !m.uts {
        return NONE;
    }
    // SAFETY: the case child, after its last step: a disposable process.
    match unsafe { sys::sethostname(UTS_MARKER) } {
        Ok(()) => 1,
        Err(e) => -e.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_their_own_namespaces() {
        let held = Held::create();
        assert!(held.missing.is_empty(), "{:?}", held.missing);
        let r = observe(&held.markers);
        assert_eq!((r.net, r.ipc), (1, 1));
        assert_eq!(r.mnt_kept(&observe(&held.markers)), 1);
        held.drain();
        // Nothing wrote the marker: the hostname is the executor's own.
        assert_eq!(held.read_uts(), 0);
    }

    #[test]
    fn no_markers_read_as_not_applicable() {
        let r = observe(&Markers::default());
        assert_eq!((r.net, r.ipc), (NONE, NONE));
    }

    #[test]
    fn an_unread_mount_id_is_reported_as_its_errno() {
        let a = Reading { mnt: Ok(3), ..Reading::default() };
        let b = Reading { mnt: Err(Errno(libc::EMFILE)), ..Reading::default() };
        assert_eq!(a.mnt_kept(&b), -libc::EMFILE);
        assert_eq!(a.mnt_kept(&Reading { mnt: Ok(4), ..Reading::default() }), 0);
    }
}
