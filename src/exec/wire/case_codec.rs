//! The compact binary form of a [`Case`] on the executor protocol: a few
//! bytes, decoded into a reused `Case` so that the executor allocates nothing
//! per case (every heap page it writes after a fork costs a copy-on-write
//! fault).
//!
//! Layout: privilege, threads, pidns_level, userns_depth, limit_zero,
//! foreign_pidns, chroot, fds, sem_undo, cwd_umask, vfork, high_fd, shm, sem_clamp, nsfs_bind (one byte each,
//! [`ABSENT`] for `None`), the sibling count and one byte per sibling, the step
//! count and per step a tag byte and its argument (`u64` flags, or a chroot
//! byte), then the guest-only fields fd_at, nr_open, fail_nth (`u32` each), then inside_witness and shared_mount (one byte each). Limits are checked by [`Case::validate`], not here.

use crate::abi::flags::RawFlags;
use crate::case::idmap::IdmapOp;
use crate::case::{CapsOp, Case, Chroot, NsType, Privilege, Shm, Sibling, Step};

/// The byte of an absent optional field.
pub const ABSENT: u8 = 0xff;

const STEP_UNSHARE: u8 = 1;
const STEP_FORK: u8 = 2;
const STEP_FORK_EXIT: u8 = 3;
const STEP_WRITE_MAPS: u8 = 4;
const STEP_DROP_SYS_ADMIN: u8 = 5;
const STEP_CHROOT: u8 = 6;
const STEP_SPAWN_THREAD: u8 = 7;
const STEP_CLONE3: u8 = 8;
const STEP_UNSHARE_INT80: u8 = 16;
/// A caps step: the operation's index in [`CapsOp::ALL`] follows.
const STEP_CAPS: u8 = 40;
/// A thread_call step: `u64` flags follow.
const STEP_THREAD_CALL: u8 = 41;
const STEP_SETNS: u8 = 17;
/// A clone3_set_tid step: `u64` flags, the null byte, the list length, the listed pids (`i32`
/// each, [`crate::case::set_tid::SET_TID_LISTED`] of them) and `u32` set_tid_size.
const STEP_CLONE3_SET_TID: u8 = 94;
const STEP_IDMAP: u8 = 50;
const STEP_WITNESS_IDMAP: u8 = 51;

fn privilege_byte(p: Privilege) -> u8 {
    match p {
        Privilege::Root => 0,
        Privilege::RootWithoutSysAdmin => 1,
        Privilege::Nobody => 2,
        Privilege::UserNs => 3,
    }
}

fn sibling_byte(s: Sibling) -> u8 {
    match s {
        Sibling::Files => 0,
        Sibling::Fs => 1,
        Sibling::Vm => 2,
        Sibling::VmSighand => 3,
        Sibling::Sysvsem => 4,
    }
}

fn chroot_byte(c: Chroot) -> u8 {
    match c {
        Chroot::Subdir => 0,
        Chroot::Root => 1,
    }
}

fn ns_byte(t: NsType) -> u8 {
    match t {
        NsType::User => 0,
        NsType::Mnt => 1,
        NsType::Uts => 2,
        NsType::Ipc => 3,
        NsType::Pid => 4,
        NsType::Cgroup => 5,
        NsType::Net => 6,
        NsType::Time => 7,
    }
}

fn shm_byte(k: Shm) -> u8 {
    match k {
        Shm::Attached => 0,
        Shm::RmidForced => 1,
    }
}

fn opt(v: Option<u8>) -> u8 {
    v.unwrap_or(ABSENT)
}

/// Appends the binary form of `case` to `out`.
pub fn encode(case: &Case, out: &mut Vec<u8>) {
    let s = &case.setup;
    out.extend_from_slice(&[
        privilege_byte(s.privilege),
        s.threads,
        opt(s.pidns_level),
        opt(s.userns_depth),
        opt(s.limit_zero.map(ns_byte)),
        u8::from(s.foreign_pidns),
        opt(s.chroot.map(chroot_byte)),
        s.fds,
        u8::from(s.sem_undo),
        u8::from(s.cwd_umask),
        u8::from(s.vfork),
        u8::from(s.high_fd),
        opt(s.shm.map(shm_byte)),
        u8::from(s.sem_clamp),
        u8::from(s.nsfs_bind),
        s.siblings.len() as u8,
    ]);
    out.extend(s.siblings.iter().map(|k| sibling_byte(*k)));
    out.push(case.steps.len() as u8);
    for step in &case.steps {
        encode_step(step, out);
    }
    // The guest-only fields (case::guest), after the steps: u32 each, u32::MAX when absent.
    for v in [s.fd_at, s.nr_open, s.fail_nth] {
        out.extend_from_slice(&v.unwrap_or(u32::MAX).to_le_bytes());
    }
    // inside_witness and shared_mount (case::inside), last.
    out.push(u8::from(s.inside_witness));
    out.push(u8::from(s.shared_mount));
}

fn encode_set_tid(out: &mut Vec<u8>, st: &crate::case::SetTidStep) {
    out.push(STEP_CLONE3_SET_TID);
    out.extend_from_slice(&st.flags.0.to_le_bytes());
    out.extend_from_slice(&[u8::from(st.null), st.len]);
    for t in st.tids {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend_from_slice(&st.size.to_le_bytes());
}

fn decode_setns(c: &mut Cursor) -> Result<crate::case::SetnsStep, DecodeError> {
    let target = c.pick(&crate::case::SetnsTarget::ALL, "unknown setns target")?;
    Ok(crate::case::SetnsStep { target, nstype: RawFlags(c.u64()?) })
}

fn decode_set_tid(c: &mut Cursor) -> Result<crate::case::SetTidStep, DecodeError> {
    let flags = RawFlags(c.u64()?);
    let null = c.bool()?;
    let len = c.u8()?;
    let mut word = || -> Result<[u8; 4], DecodeError> { Ok([c.u8()?, c.u8()?, c.u8()?, c.u8()?]) };
    let mut tids = [0i32; crate::case::set_tid::SET_TID_LISTED];
    for t in &mut tids {
        *t = i32::from_le_bytes(word()?);
    }
    let size = u32::from_le_bytes(word()?);
    Ok(crate::case::SetTidStep { flags, null, len, tids, size })
}

/// One step of [`encode`].
fn encode_step(step: &Step, out: &mut Vec<u8>) {
    match step {
        Step::Unshare(f) => {
            out.push(STEP_UNSHARE);
            out.extend_from_slice(&f.0.to_le_bytes());
        }
        Step::UnshareInt80(f) => {
            out.push(STEP_UNSHARE_INT80);
            out.extend_from_slice(&f.0.to_le_bytes());
        }
        Step::Fork => out.push(STEP_FORK),
        Step::ForkExit => out.push(STEP_FORK_EXIT),
        Step::WriteMaps => out.push(STEP_WRITE_MAPS),
        Step::DropSysAdmin => out.push(STEP_DROP_SYS_ADMIN),
        Step::Chroot(c) => out.extend_from_slice(&[STEP_CHROOT, chroot_byte(*c)]),
        Step::SpawnThread => out.push(STEP_SPAWN_THREAD),
        Step::Clone3(f) => {
            out.push(STEP_CLONE3);
            out.extend_from_slice(&f.0.to_le_bytes());
        }
        Step::Caps(op) => {
            let i = CapsOp::ALL.iter().position(|o| o == op).unwrap_or(0);
            out.extend_from_slice(&[STEP_CAPS, i as u8]);
        }
        Step::ThreadCall(f) => {
            out.push(STEP_THREAD_CALL);
            out.extend_from_slice(&f.0.to_le_bytes());
        }
        Step::Setns(st) => {
            out.extend_from_slice(&[STEP_SETNS, st.target.index() as u8]);
            out.extend_from_slice(&st.nstype.0.to_le_bytes());
        }
        Step::Clone3SetTid(st) => encode_set_tid(out, st),
        Step::Idmap(op) => {
            let i = IdmapOp::ALL.iter().position(|o| o == op).unwrap_or(0);
            out.extend_from_slice(&[STEP_IDMAP, i as u8]);
        }
        Step::WitnessIdmap(op) => {
            let i = IdmapOp::ALL.iter().position(|o| o == op).unwrap_or(0);
            out.extend_from_slice(&[STEP_WITNESS_IDMAP, i as u8]);
        }
    }
}

/// Why bytes are not a case (the executor answers with it as a protocol error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed case at byte {at}: {what}")]
pub struct DecodeError {
    /// Offset of the offending byte.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn fail<T>(&self, what: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError { at: self.at, what })
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.bytes.get(self.at) {
            Some(b) => {
                self.at += 1;
                Ok(*b)
            }
            None => self.fail("truncated"),
        }
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        match self.bytes.get(self.at..self.at + 8) {
            Some(b) => {
                self.at += 8;
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                Ok(u64::from_le_bytes(le))
            }
            None => self.fail("truncated flags"),
        }
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => self.fail("a boolean byte must be 0 or 1"),
        }
    }

    fn opt(&mut self) -> Result<Option<u8>, DecodeError> {
        self.u8().map(|b| (b != ABSENT).then_some(b))
    }

    fn pick<T: Copy>(&mut self, table: &[T], what: &'static str) -> Result<T, DecodeError> {
        let b = self.u8()?;
        match table.get(usize::from(b)) {
            Some(v) => Ok(*v),
            None => {
                self.at -= 1;
                self.fail(what)
            }
        }
    }

    fn pick_opt<T: Copy>(&mut self, table: &[T], what: &'static str) -> Result<Option<T>, DecodeError> {
        if self.bytes.get(self.at) == Some(&ABSENT) {
            self.at += 1;
            return Ok(None);
        }
        self.pick(table, what).map(Some)
    }
}

const PRIVILEGES: [Privilege; 4] =
    [Privilege::Root, Privilege::RootWithoutSysAdmin, Privilege::Nobody, Privilege::UserNs];
const SIBLINGS: [Sibling; 5] = [Sibling::Files, Sibling::Fs, Sibling::Vm, Sibling::VmSighand, Sibling::Sysvsem];
const SHMS: [Shm; 2] = [Shm::Attached, Shm::RmidForced];
const CHROOTS: [Chroot; 2] = [Chroot::Subdir, Chroot::Root];
const NS_TYPES: [NsType; 8] =
    [NsType::User, NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Pid, NsType::Cgroup, NsType::Net, NsType::Time];

/// One step of [`decode_into`].
fn decode_step(c: &mut Cursor<'_>) -> Result<Step, DecodeError> {
    Ok(match c.u8()? {
        STEP_UNSHARE => Step::Unshare(RawFlags(c.u64()?)),
        STEP_FORK => Step::Fork,
        STEP_FORK_EXIT => Step::ForkExit,
        STEP_WRITE_MAPS => Step::WriteMaps,
        STEP_DROP_SYS_ADMIN => Step::DropSysAdmin,
        STEP_CHROOT => Step::Chroot(c.pick(&CHROOTS, "unknown chroot kind")?),
        STEP_SPAWN_THREAD => Step::SpawnThread,
        STEP_CLONE3 => Step::Clone3(RawFlags(c.u64()?)),
        STEP_UNSHARE_INT80 => Step::UnshareInt80(RawFlags(c.u64()?)),
        STEP_CAPS => Step::Caps(c.pick(&CapsOp::ALL, "unknown caps operation")?),
        STEP_THREAD_CALL => Step::ThreadCall(RawFlags(c.u64()?)),
        STEP_SETNS => Step::Setns(decode_setns(c)?),
        STEP_CLONE3_SET_TID => Step::Clone3SetTid(decode_set_tid(c)?),
        STEP_IDMAP => Step::Idmap(c.pick(&IdmapOp::ALL, "unknown idmap operation")?),
        STEP_WITNESS_IDMAP => Step::WitnessIdmap(c.pick(&IdmapOp::ALL, "unknown idmap operation")?),
        _ => {
            c.at -= 1;
            return c.fail("unknown step tag");
        }
    })
}

/// Decodes `bytes` into `case`, reusing its vectors (no allocation once they have grown to
/// the largest case seen). On error `case` holds a partial value.
///
/// # Errors
/// [`DecodeError`] on a truncated buffer, an unknown code or trailing bytes.
pub fn decode_into(bytes: &[u8], case: &mut Case) -> Result<(), DecodeError> {
    let mut c = Cursor { bytes, at: 0 };
    let s = &mut case.setup;
    s.privilege = c.pick(&PRIVILEGES, "unknown privilege")?;
    s.threads = c.u8()?;
    s.pidns_level = c.opt()?;
    s.userns_depth = c.opt()?;
    s.limit_zero = c.pick_opt(&NS_TYPES, "unknown namespace type")?;
    s.foreign_pidns = c.bool()?;
    s.chroot = c.pick_opt(&CHROOTS, "unknown chroot kind")?;
    s.fds = c.u8()?;
    s.sem_undo = c.bool()?;
    s.cwd_umask = c.bool()?;
    s.vfork = c.bool()?;
    s.high_fd = c.bool()?;
    s.shm = c.pick_opt(&SHMS, "unknown shm setup")?;
    s.sem_clamp = c.bool()?;
    s.nsfs_bind = c.bool()?;
    s.siblings.clear();
    for _ in 0..c.u8()? {
        let k = c.pick(&SIBLINGS, "unknown sibling kind")?;
        s.siblings.push(k);
    }
    case.steps.clear();
    for _ in 0..c.u8()? {
        let step = decode_step(&mut c)?;
        case.steps.push(step);
    }
    let s = &mut case.setup;
    for field in [&mut s.fd_at, &mut s.nr_open, &mut s.fail_nth] {
        let mut w = [0u8; 4];
        for b in &mut w {
            *b = c.u8()?;
        }
        *field = Some(u32::from_le_bytes(w)).filter(|v| *v != u32::MAX);
    }
    case.setup.inside_witness = c.bool()?;
    case.setup.shared_mount = c.bool()?;
    if c.at != bytes.len() {
        return c.fail("trailing bytes after the last step");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Setup;
    use proptest::prelude::*;

    fn empty() -> Case {
        Case { setup: Setup::default(), steps: Vec::new() }
    }

    #[test]
    fn tables_follow_the_encoders() {
        for (i, p) in PRIVILEGES.iter().enumerate() {
            assert_eq!(usize::from(privilege_byte(*p)), i);
        }
        for (i, s) in SIBLINGS.iter().enumerate() {
            assert_eq!(usize::from(sibling_byte(*s)), i);
        }
        for (i, c) in CHROOTS.iter().enumerate() {
            assert_eq!(usize::from(chroot_byte(*c)), i);
        }
        for (i, t) in NS_TYPES.iter().enumerate() {
            assert_eq!(usize::from(ns_byte(*t)), i);
        }
        for (i, k) in SHMS.iter().enumerate() {
            assert_eq!(usize::from(shm_byte(*k)), i);
        }
    }

    #[test]
    fn malformed_bytes_are_named() {
        let mut bytes = Vec::new();
        encode(&Case::unshare(&[1 << 63]), &mut bytes);
        let mut case = empty();
        assert_eq!(decode_into(&bytes[..bytes.len() - 15], &mut case).unwrap_err().what, "truncated flags");
        assert_eq!(decode_into(&bytes[..bytes.len() - 1], &mut case).unwrap_err().what, "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_into(&longer, &mut case).unwrap_err().what, "trailing bytes after the last step");
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert_eq!(decode_into(&bad, &mut case).unwrap_err(), DecodeError { at: 0, what: "unknown privilege" });
        let mut bad = bytes.clone();
        bad[17] = 42;
        assert_eq!(decode_into(&bad, &mut case).unwrap_err(), DecodeError { at: 17, what: "unknown step tag" });
        let mut bad = bytes.clone();
        bad[12] = 7;
        assert_eq!(decode_into(&bad, &mut case).unwrap_err(), DecodeError { at: 12, what: "unknown shm setup" });
        assert!(decode_into(&bytes, &mut case).is_ok());
        assert_eq!(case, Case::unshare(&[1 << 63]));
    }

    proptest! {
        #[test]
        fn every_generated_case_survives_the_wire(case in crate::generate::strategy::case()) {
            let mut bytes = Vec::new();
            encode(&case, &mut bytes);
            // Decode over a previous, different value: nothing of it may remain.
            let mut back = Case::unshare(&[1, 2, 3, 4]);
            back.setup.siblings = vec![Sibling::Vm; 3];
            decode_into(&bytes, &mut back).unwrap();
            prop_assert_eq!(back, case);
        }
    }
}
