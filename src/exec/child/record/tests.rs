//! Unit tests of `exec/child/record.rs`.
use super::*;
use crate::exec::observe::NsValue;

#[test]
fn messages_round_trip_and_fit_in_pipe_buf() {
    const { assert!(MSG_LEN <= 512, "a message must be written atomically (PIPE_BUF)") };
    let mut m = Msg::new(MsgKind::Step);
    m.op = 3;
    m.rc = -1;
    m.errno = 22;
    m.snap.ns_ino[2] = 4_026_531_841;
    m.snap.ns_err[5] = 2;
    m.snap.ids = [1, 2, 3, 4];
    m.snap.cap_eff = 0x1ff_ffff_ffff;
    m.snap.threads = 3;
    m.snap.pid = 77;
    m.snap.kcmp[0] = [0, 1, 2, -1, 0];
    m.snap.fd_flags = [1, 0, NONE];
    m.probe[2] = 1;
    m.clock = [1, 2, 3, u64::MAX];
    let mut buf = [0u8; MSG_LEN];
    m.encode(&mut buf);
    assert_eq!(Msg::decode(&buf), Some(m));
    buf[0] ^= 1;
    assert_eq!(Msg::decode(&buf), None);
    let s = m.snap.to_snapshot();
    assert_eq!(s.link(NsLink::PidForChildren), NsValue::Error(Errno::ENOENT));
    assert_eq!(s.link(NsLink::Mnt), NsValue::Inode(4_026_531_841));
}
