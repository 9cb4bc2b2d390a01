//! The executor process: the harness binary re-executed with a hidden
//! subcommand. It enters the sandbox, probes the environment, then serves
//! binary frames ([`crate::exec::wire::protocol`]) on stdin and stdout: one request per
//! case, one report per case. Single-threaded by construction: it never starts
//! a thread. Per case it allocates nothing and formats nothing: the request
//! is decoded into a reused `Case`, and the child's raw messages are forwarded
//! as they are, so that the executor writes as few pages as possible between
//! two forks (each written page is a copy-on-write fault).

use std::os::fd::RawFd;
use std::time::Duration;

use crate::case::Case;

use super::{probe, sandbox, watch};
use crate::abi::ns::{NsLink, NsObserver};
use crate::exec::child::markers::Held;
use crate::exec::child::plan::Plan;
use crate::exec::child::record::{MSG_LEN, Msg, MsgKind, outside_probe};
use crate::exec::wire::case_codec;
use crate::exec::wire::protocol::{
    ExecutorStats, MAX_FRAME, REPORT_HEADER, REQ_BARE, REQ_CASE, RESP_BARE, RESP_ERROR, RESP_FATAL, RESP_HELLO,
    RESP_INEFFECTIVE, RESP_REPORT, begin_frame, finish_frame, read_u64,
};
use crate::sys::{self, ParentOnlyBuf};

const STDIN: RawFd = 0;
const STDOUT: RawFd = 1;

/// Writes all of `bytes` to `fd`; false if the reader is gone.
fn write_all(fd: RawFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match sys::write(fd, bytes) {
            Ok(0) | Err(_) => return false,
            Ok(n) => bytes = &bytes[n..],
        }
    }
    true
}

/// Sends a rare frame: a tag and a body.
fn send(tag: u8, body: &[u8]) -> bool {
    let mut out = Vec::with_capacity(5 + body.len());
    begin_frame(&mut out, tag);
    out.extend_from_slice(body);
    finish_frame(&mut out);
    write_all(STDOUT, &out)
}

fn send_error(id: u64, message: &str) -> bool {
    let mut body = id.to_le_bytes().to_vec();
    body.extend_from_slice(message.as_bytes());
    send(RESP_ERROR, &body)
}

/// Frames read from a descriptor into one buffer that no fork copies.
struct Frames {
    fd: RawFd,
    buf: ParentOnlyBuf,
    start: usize,
}

impl Frames {
    fn new(fd: RawFd) -> Result<Frames, String> {
        let buf = ParentOnlyBuf::new(4 + MAX_FRAME).map_err(|e| format!("cannot map the request buffer: {e}"))?;
        Ok(Frames { fd, buf, start: 0 })
    }

    /// The byte range of the next frame's body in `buf`; `Ok(None)` at a clean end of input.
    fn next(&mut self) -> Result<Option<(usize, usize)>, String> {
        loop {
            let have = self.buf.len() - self.start;
            let mut need = 4;
            if have >= 4 {
                let mut le = [0u8; 4];
                le.copy_from_slice(&self.buf.as_slice()[self.start..self.start + 4]);
                let len = u32::from_le_bytes(le) as usize;
                if len == 0 || len > MAX_FRAME {
                    return Err(format!("a request frame of {len} bytes (expected 1 to {MAX_FRAME})"));
                }
                if have >= 4 + len {
                    let body = (self.start + 4, self.start + 4 + len);
                    self.start += 4 + len;
                    return Ok(Some(body));
                }
                need = 4 + len;
            }
            if self.start + need > self.buf.capacity() || have == 0 {
                self.buf.consume(self.start);
                self.start = 0;
            }
            match sys::read(self.fd, self.buf.spare()) {
                Ok(0) if have == 0 => return Ok(None),
                Ok(0) => return Err(format!("the input ended inside a frame ({have} of {need} bytes)")),
                Ok(n) => self.buf.commit(n),
                Err(e) => return Err(format!("reading requests: {e}")),
            }
        }
    }
}

/// Starts a report frame in `out`: length placeholder, tag, id, then zeroed room for the wait
/// status, the timeout byte and the executor's stamps.
fn begin_report(out: &mut ParentOnlyBuf, id: u64) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0, 0, RESP_REPORT]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&[0; 5 + 3 * 8]);
}

/// Runs the executor until stdin closes; returns the process exit code.
pub fn executor_main() -> i32 {
    executor_main_with(None, None)
}

/// As [`executor_main`], with a selftest mutant (a seccomp filter that makes unshare lie)
/// installed after the sandbox is built and before the environment probe, so the probe and
/// every case see the lying kernel; the mutant is named first in the environment's restrictions.
/// With `pin_slot`, the executor first leases a free CPU and pins itself (and so every case
/// child) to it, or runs unpinned if none is free ([`super::placement`]).
pub fn executor_main_with(mutant: Option<&str>, pin_slot: Option<usize>) -> i32 {
    // Before the sandbox: the lock files live in the host's temporary directory. The lease is
    // held until this process (and the relay the sandbox leaves outside) exits.
    let lease = pin_slot.and_then(super::placement::lease);
    // The coverage mode (`exec::executor::kcov`): KCOV is opened before the sandbox, while debugfs is in sight.
    if let Err(message) = super::kcov::open_if_asked() {
        send(RESP_FATAL, message.as_bytes());
        return 2;
    }
    match start(mutant, lease) {
        Ok(started) => serve(&started.env, started.constant_fds, &started.markers),
        Err(code) => code,
    }
}

/// An executor ready to serve: its environment, said in hello, and what it holds open for the
/// whole run (its CPU lease, the namespaces).
struct Started {
    env: crate::env::Environment,
    /// Descriptors held from the start to the end, not counted as a case's leak.
    constant_fds: u64,
    /// The namespace markers the case children read.
    markers: Held,
    _lease: Option<super::placement::Lease>,
    _held: Vec<std::fs::File>,
}

/// Enters and verifies the sandbox, installs the mutant, probes the environment and says
/// hello. `Err` holds the exit status after the error frame was sent.
fn start(mutant: Option<&str>, lease: Option<super::placement::Lease>) -> Result<Started, i32> {
    let info = match sandbox::enter() {
        Ok(info) => info,
        Err(sandbox::EnterError::Failed(message)) => {
            send(RESP_FATAL, message.as_bytes());
            return Err(2);
        }
        Err(sandbox::EnterError::Ineffective(message)) => {
            // A violation of unshare's contract, found before anything was written.
            send(RESP_INEFFECTIVE, message.as_bytes());
            return Err(1);
        }
    };
    let lie = match mutant.map(super::sandbox::install_mutant) {
        None => None,
        Some(Ok(note)) => Some(note),
        Some(Err(message)) => {
            send(RESP_FATAL, message.as_bytes());
            return Err(2);
        }
    };
    let mut env = probe::environment(&info);
    env.restrictions.splice(0..0, lie);
    // On a kernel declared a throwaway, an ineffective sandbox is reported and the run goes on.
    env.restrictions.splice(0..0, info.violations.iter().map(|v| format!("INEFFECTIVE SANDBOX: {v}")));
    env.sandbox_violations.clone_from(&info.violations);
    // Holding the namespaces open is a speed-up worth 10 descriptors: not under a tight
    // RLIMIT_NOFILE, where the executor needs its descriptors for the cases (3 per case).
    let roomy = sys::getrlimit(libc::RLIMIT_NOFILE).is_ok_and(|(soft, _)| soft.is_none_or(|s| s >= 64));
    let held = if roomy { hold_namespaces(env.ns_observer) } else { Vec::new() };
    // In the verified sandbox: what the case children read to tell their namespaces by behaviour.
    let mut markers = Held::create();
    markers.make_inside(info.violations.is_empty());
    env.restrictions.extend(markers.missing.iter().cloned());
    // Descriptors held from the start to the end, not counted as a case's leak.
    let constant_fds = u64::from(lease.is_some()) + held.len() as u64 + markers.descriptors();
    env.pinned_cpu = lease.as_ref().map(|l| l.cpu as u32);
    // Last, with every descriptor held for the run open: what a case child inherits.
    env.resources = super::limits::measure();
    if let Some(chrooted) = env.resources.chrooted {
        env.chrooted = chrooted;
    }
    match serde_json::to_vec(&env) {
        Ok(json) if send(RESP_HELLO, &json) => {}
        _ => return Err(2),
    }
    Ok(Started { env, constant_fds, markers, _lease: lease, _held: held })
}

/// Serves requests until the harness closes stdin; returns the exit status.
fn serve(env: &crate::env::Environment, constant_fds: u64, markers: &Held) -> i32 {
    let buffers = Frames::new(STDIN).and_then(|f| {
        let trailer = if sys::kcov::active() { super::kcov::MAX_TRAILER } else { 0 };
        let out = ParentOnlyBuf::new(REPORT_HEADER + 4 + watch::MAX_REPORT + MSG_LEN + trailer)
            .map_err(|e| format!("cannot map the report buffer: {e}"))?;
        Ok((f, out))
    });
    let (mut frames, mut out) = match buffers {
        Ok(b) => b,
        Err(message) => {
            send_error(0, &message);
            return 2;
        }
    };
    let mut case = Case::unshare(&[0]);
    let coverage = sys::kcov::active();
    sys::release_free_heap();
    let mut pcs = Vec::new();
    loop {
        let (a, b) = match frames.next() {
            Ok(Some(range)) => range,
            Ok(None) => return 0,
            Err(message) => {
                send_error(0, &message);
                return 2;
            }
        };
        let body = &frames.buf.as_slice()[a..b];
        let id = read_u64(body, 1).unwrap_or(0);
        let served = match body[0] {
            REQ_CASE if body.len() >= 17 => {
                let timeout = Duration::from_millis(read_u64(body, 9).unwrap_or(0));
                let served = serve_case(&body[17..], timeout, &mut case, env, markers, id, &mut out);
                markers.drain();
                match served {
                    Ok(()) if coverage => {
                        // The coverage mode only (it allocates): the case's PCs after its messages.
                        super::kcov::append_trailer(&mut out, &mut pcs);
                        write_all(STDOUT, out.as_slice())
                    }
                    Ok(()) => write_all(STDOUT, out.as_slice()),
                    Err(message) => send_error(id, &message),
                }
            }
            REQ_BARE if body.len() >= 9 && (body.len() - 9).is_multiple_of(8) => {
                let flags: Vec<u64> = body[9..].chunks_exact(8).filter_map(|w| read_u64(w, 0)).collect();
                match watch::bare_loop(&flags) {
                    Ok(nanos) => {
                        let mut reply = id.to_le_bytes().to_vec();
                        reply.extend_from_slice(&nanos.to_le_bytes());
                        own_stats(constant_fds).encode(&mut reply);
                        send(RESP_BARE, &reply)
                    }
                    Err(e) => send_error(id, &format!("bare loop failed: {e}")),
                }
            }
            tag => send_error(id, &format!("unknown or short request (tag {tag}, {} bytes)", body.len())),
        };
        if !served {
            return 2;
        }
    }
}

/// Decodes, plans and runs one case, leaving its report frame in `out`.
fn serve_case(
    bytes: &[u8],
    timeout: Duration,
    case: &mut Case,
    env: &crate::env::Environment,
    markers: &Held,
    id: u64,
    out: &mut ParentOnlyBuf,
) -> Result<(), String> {
    case_codec::decode_into(bytes, case).map_err(|e| format!("bad case: {e}"))?;
    case.validate().map_err(|e| format!("bad case: {e}"))?;
    super::guest_cases::admit(case, env)?;
    let mut plan = Plan::new(&case.setup, env).map_err(|e| format!("bad case: {e}"))?;
    plan.markers = markers.markers;
    plan.inside = markers.inside;
    begin_report(out, id);
    let run = watch::run_one(case, plan, timeout, out).map_err(|e| format!("executor failure: {e}"));
    super::guest_cases::restore(case, env)?;
    let run = run?;
    // What only the executor can see, after the case: appended as one more message.
    let mut outside = Msg::new(MsgKind::Outside);
    outside.probe[outside_probe::UTS_SEEN] = markers.read_uts();
    let mut bytes = [0u8; MSG_LEN];
    outside.encode(&mut bytes);
    out.extend_from_slice(&bytes);
    let len = (out.len() - 4) as u32;
    let frame = out.as_mut_slice();
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[13..17].copy_from_slice(&run.status.to_le_bytes());
    frame[17] = u8::from(run.timed_out);
    for (k, t) in run.clock.iter().enumerate() {
        frame[18 + 8 * k..26 + 8 * k].copy_from_slice(&t.to_le_bytes());
    }
    Ok(())
}

/// Processes in the executor's /proc other than itself.
fn other_processes() -> u64 {
    std::fs::read_dir("/proc")
        .map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count() as u64
        })
        .saturating_sub(1)
}

/// The executor's own resources (it is pid 1 of the sandbox, so every other pid in its /proc
/// is something a case left behind).
/// With pidfd ioctls, the case children open the executor's own namespaces (most of them stay
/// the child's): holding them open keeps their nsfs dentries alive, so the children's lookups
/// find them instead of building and freeing a new inode each time.
fn hold_namespaces(observer: NsObserver) -> Vec<std::fs::File> {
    if observer != NsObserver::PidfdIoctl {
        return Vec::new();
    }
    NsLink::ALL.iter().filter_map(|l| std::fs::File::open(format!("/proc/self/ns/{}", l.file_name())).ok()).collect()
}

/// The executor's resources. `constant_fds` descriptors (the CPU lease's lock, the held
/// namespaces) are held from the start; they are not counted, so executors compare.
fn own_stats(constant_fds: u64) -> ExecutorStats {
    // The last case's group was killed, but a process may take a moment to die (a sibling
    // with threads, a nested pid-ns init): reap for up to a second before counting.
    let mut others = 0;
    for _ in 0..200 {
        watch::reap_orphans();
        others = other_processes();
        if others == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut buf = [0u8; 8192];
    let n = sys::read_file_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count() as u64);
    ExecutorStats {
        rss_kib: sys::proc::field_u64(&buf[..n], b"VmRSS:").unwrap_or(0),
        // Minus the descriptor read_dir holds, and the lease's.
        fds: count("/proc/self/fd").saturating_sub(1 + constant_fds),
        mounts: std::fs::read_to_string("/proc/self/mountinfo").map_or(0, |m| m.lines().count() as u64),
        other_processes: others,
        // One line per set after the header line.
        semaphores: std::fs::read_to_string("/proc/sysvipc/sem")
            .map_or(0, |t| t.lines().count().saturating_sub(1) as u64),
    }
}
