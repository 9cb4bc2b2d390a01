//! The harness's side of reading the executor's output: one frame at a time, each within a
//! deadline, waiting either in `poll` (woken by the writer) or by naps (a patient reader).

use std::io::{BufReader, Read};
use std::os::fd::AsRawFd;
use std::process::ChildStdout;
use std::time::{Duration, Instant};

use super::ExecError;
use super::wire::protocol::MAX_FRAME;

/// How a reader waits for bytes that are not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// In `poll`, woken by the writer.
    Woken,
    /// By naps of [`NAP`], looking at the pipe after each (see [`Executor::set_patient`]).
    Napping,
}

/// One nap of a patient reader: short against the cases in flight (several of about 0.3 ms
/// each), long enough that the napping costs its CPU little.
const NAP: Duration = Duration::from_micros(200);

/// Reads one frame's body into `frame`, waiting at most `limit` (`None`: for ever) for it.
pub(crate) fn read_frame(
    stdout: &mut BufReader<ChildStdout>,
    frame: &mut Vec<u8>,
    limit: Option<Duration>,
    what: &str,
    waiting: Waiting,
) -> Result<(), ExecError> {
    let deadline = limit.map(|l| (Instant::now() + l, l));
    let mut len = [0u8; 4];
    read_exact_by(stdout, &mut len, deadline, what, waiting).map_err(|e| e.or_died("reading its output"))?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(ExecError::Died(format!("it sent a frame of {len} bytes")));
    }
    frame.resize(len, 0);
    read_exact_by(stdout, frame, deadline, what, waiting)
        .map_err(|e| e.or_died(&format!("reading a frame of {len} bytes")))
}

/// Why a bounded read failed.
pub(crate) enum ReadFailure {
    Io(std::io::Error),
    Hung(ExecError),
}

impl ReadFailure {
    fn or_died(self, doing: &str) -> ExecError {
        match self {
            ReadFailure::Io(e) => ExecError::Died(format!("{doing}: {e}")),
            ReadFailure::Hung(e) => e,
        }
    }
}

/// `read_exact`, but waiting with `poll` until `deadline` whenever nothing is buffered.
fn read_exact_by(
    stdout: &mut BufReader<ChildStdout>,
    mut buf: &mut [u8],
    deadline: Option<(Instant, Duration)>,
    what: &str,
    waiting: Waiting,
) -> Result<(), ReadFailure> {
    while !buf.is_empty() {
        if stdout.buffer().is_empty()
            && let Some((at, limit)) = deadline
        {
            wait_readable(stdout.get_ref().as_raw_fd(), at, waiting).map_err(|e| match e {
                None => {
                    ReadFailure::Hung(ExecError::Hung { what: what.to_string(), waited_ms: limit.as_millis() as u64 })
                }
                Some(e) => ReadFailure::Io(e),
            })?;
        }
        match stdout.read(buf) {
            Ok(0) => return Err(ReadFailure::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e)),
        }
    }
    Ok(())
}

/// Waits until `fd` is readable (or closed) or `deadline` passes (`Err(None)`). Past the
/// deadline it looks at the pipe once more before giving up: a reader that slept through
/// the deadline (a nap, or a wait for its CPU, overshot under load) must not call an
/// executor hung whose report came in meanwhile.
fn wait_readable(fd: std::os::fd::RawFd, deadline: Instant, waiting: Waiting) -> Result<(), Option<std::io::Error>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = match waiting {
            _ if left.is_zero() => 0,
            Waiting::Woken => i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX),
            Waiting::Napping => 0,
        };
        let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
        match crate::sys::poll(&mut fds, ms) {
            Ok(0) if left.is_zero() => return Err(None),
            Ok(0) if waiting == Waiting::Napping => std::thread::sleep(NAP.min(left)),
            Ok(0) => {}
            Ok(_) => return Ok(()),
            Err(e) if e == crate::abi::errno::Errno::EINTR => {}
            Err(e) => return Err(Some(std::io::Error::from_raw_os_error(e.0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_report_that_came_in_is_read_even_when_the_reader_looks_after_its_deadline() {
        let (rd, wr) = crate::sys::pipe().unwrap();
        let past = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        for waiting in [Waiting::Woken, Waiting::Napping] {
            assert!(matches!(wait_readable(rd.as_raw_fd(), past, waiting), Err(None)), "{waiting:?}: nothing yet");
        }
        crate::sys::write(wr.as_raw_fd(), b"r").unwrap();
        for waiting in [Waiting::Woken, Waiting::Napping] {
            assert!(wait_readable(rd.as_raw_fd(), past, waiting).is_ok(), "{waiting:?}: the byte is there");
        }
    }
}
