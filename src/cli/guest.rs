//! Guest-side `/init` for running the harness inside a qemu virtual machine.
//!
//! `scripts/kernels.sh` packs the statically linked harness binary into an
//! initramfs as `/init` and boots it under several kernels. The kernel then
//! runs the binary as pid 1, and `main` hands control to [`guest_init_main`],
//! which:
//!
//! 1. mounts `proc` on `/proc`, `sysfs` on `/sys`, `devtmpfs` on `/dev` and
//!    `tmpfs` on `/tmp` (creating the directories if needed);
//! 2. reads `/proc/cmdline` and takes the value of `uf.args=` (arguments
//!    separated by commas, e.g. `uf.args=replay,/corpus,--format,ktap`) and,
//!    optionally, `uf.timeout=SECONDS` (a guest-side limit for the run);
//! 3. opens the second serial port `/dev/ttyS1` (the report channel; the
//!    console is `ttyS0`) and switches its output to raw mode so that the
//!    report reaches the host byte for byte (no `\n` to `\r\n` translation);
//! 4. spawns a child (not pid 1: after `unshare(CLONE_NEWUSER)` pid 1 could no
//!    longer power the machine off) that executes this very binary
//!    (`/proc/self/exe`) with those arguments and `argv[0] = "unshare-fuzz"`,
//!    its stdout on `/dev/ttyS1` and its stderr on the console;
//! 5. waits for the child while reaping every other zombie that gets
//!    reparented to pid 1, writes a final line `# guest-exit: <status>` to
//!    `/dev/ttyS1` (`<status>` is the exit code, `signal N`, `timeout` or
//!    `spawn-failed`), drains the serial ports, `sync`s and powers off with
//!    `reboot(RB_POWER_OFF)`.
//!
//! Every failure is reported on the console (stderr) with a `uf-guest:` prefix
//! naming what failed; failures of the set-up steps are not fatal, so that the
//! report channel still gets its `# guest-exit` line whenever possible.
//!
//! The function refuses to run unless the process is pid 1: powering off is
//! what it does last, and that must never happen on a host by accident.
//!
//! # Safety
//!
//! This module calls into `libc` for what `std` does not offer: `mount(2)`,
//! `waitpid(2)` on any child, `kill(2)`, `termios` handling, `sync(2)` and
//! `reboot(2)`. Every call passes either plain integers, pointers to live local
//! values, or pointers obtained from `CString`s that outlive the call; no
//! pointer is retained by the callee after it returns. Each `unsafe` block
//! carries a `// SAFETY:` comment with the specific argument.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the serial port that carries the report (KTAP) to the host.
pub const REPORT_TTY: &str = "/dev/ttyS1";

/// Kernel command-line parameter holding the comma-separated harness arguments.
pub const ARGS_PARAM: &str = "uf.args=";

/// Optional kernel command-line parameter: seconds after which the guest kills
/// the harness and reports `# guest-exit: timeout`.
pub const TIMEOUT_PARAM: &str = "uf.timeout=";

/// Prefix of the last line written to the report channel.
pub const EXIT_MARKER: &str = "# guest-exit:";

/// `argv[0]` given to the harness child (deliberately not `/init`, so that the
/// child never mistakes itself for the guest init, even as pid 1 of a new pid
/// namespace).
pub const CHILD_ARGV0: &str = "unshare-fuzz";

/// How the harness child ended, as written after [`EXIT_MARKER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The child exited with this code.
    Code(i32),
    /// The child was killed by this signal.
    Signal(i32),
    /// The child ran longer than `uf.timeout=` and was killed.
    Timeout,
    /// The child could not be started.
    SpawnFailed,
}

impl std::fmt::Display for GuestExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestExit::Code(c) => write!(f, "{c}"),
            GuestExit::Signal(s) => write!(f, "signal {s}"),
            GuestExit::Timeout => write!(f, "timeout"),
            GuestExit::SpawnFailed => write!(f, "spawn-failed"),
        }
    }
}

/// Settings read from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestConfig {
    /// Arguments for the harness child (from `uf.args=`).
    pub args: Vec<String>,
    /// Guest-side time limit for the child (from `uf.timeout=`).
    pub timeout: Option<Duration>,
    /// A program of the initramfs to run instead of the harness, without arguments (from
    /// `uf.exec=`; e.g. a C reproducer of a guest-only case, which reads the same guest marks).
    pub guest_exec: Option<String>,
}

/// Optional kernel command-line parameter: run this program of the initramfs instead of the
/// harness (`scripts/kernels.sh --extra FILE --append uf.exec=/FILE`).
pub const GUEST_EXEC_PARAM: &str = "uf.exec=";

/// Parses a kernel command line (the contents of `/proc/cmdline`).
///
/// Parameters are separated by whitespace; double quotes group a value that
/// contains spaces (`uf.args="run,--name,a b"`), as the kernel itself does.
/// Only parameters before a lone `--` are considered, and the last occurrence
/// of a parameter wins. An empty `uf.args=` yields no arguments; empty items
/// between commas are dropped.
pub fn parse_cmdline(cmdline: &str) -> GuestConfig {
    let mut cfg = GuestConfig::default();
    for token in split_cmdline(cmdline) {
        if token == "--" {
            break;
        }
        if let Some(v) = token.strip_prefix(ARGS_PARAM) {
            cfg.args = v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        } else if let Some(v) = token.strip_prefix(GUEST_EXEC_PARAM) {
            cfg.guest_exec = Some(v.to_owned()).filter(|p| p.starts_with('/'));
        } else if let Some(v) = token.strip_prefix(TIMEOUT_PARAM) {
            cfg.timeout = v.parse::<u64>().ok().filter(|&s| s > 0).map(Duration::from_secs);
        }
    }
    cfg
}

/// Splits a kernel command line into parameters, honouring double quotes
/// (which are removed) the way the kernel's `next_arg()` does.
fn split_cmdline(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut has_token = false;
    for ch in cmdline.chars() {
        match ch {
            '"' => {
                in_quotes = !in_quotes;
                has_token = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_token {
                    out.push(std::mem::take(&mut cur));
                    has_token = false;
                }
            }
            c => {
                cur.push(c);
                has_token = true;
            }
        }
    }
    if has_token {
        out.push(cur);
    }
    out
}

/// Entry point of the guest init; call it when the process is pid 1 and was
/// started as `/init`.
///
/// It never returns: it powers the virtual machine off at the end (or, should
/// `reboot(2)` fail, exits, which makes the kernel panic and, with `panic=-1`
/// and qemu's `-no-reboot`, ends qemu as well). If the process is not pid 1 it
/// prints an error and exits with status 2 without touching anything.
pub fn guest_init_main() -> ! {
    if std::process::id() != 1 {
        eprintln!("uf-guest: refusing to act as guest init: not pid 1");
        std::process::exit(2);
    }

    ensure_std_fds();
    mount_filesystems();
    // devtmpfs now hides the initramfs' /dev/console; the fds stay valid,
    // but make sure there is something on 0/1/2 if the kernel gave us nothing.
    ensure_std_fds();

    let cfg = match std::fs::read_to_string("/proc/cmdline") {
        Ok(s) => parse_cmdline(&s),
        Err(e) => {
            eprintln!("uf-guest: read /proc/cmdline failed: {e}");
            GuestConfig::default()
        }
    };
    eprintln!("uf-guest: running {CHILD_ARGV0} {:?} (stdout -> {REPORT_TTY}, timeout {:?})", cfg.args, cfg.timeout);

    let report = open_report_tty();
    let status = run_child(&cfg, report.as_ref());

    let line = format!("{EXIT_MARKER} {status}\n");
    match &report {
        Some(tty) => {
            let mut w: &File = tty;
            if let Err(e) = w.write_all(line.as_bytes()).and_then(|()| w.flush()) {
                eprintln!("uf-guest: write {REPORT_TTY} failed: {e}");
            }
            drain(tty.as_raw_fd());
        }
        None => eprintln!("uf-guest: no report channel; {}", line.trim_end()),
    }
    eprintln!("uf-guest: harness finished ({status}); powering off");
    drain(2);
    power_off()
}

/// Mounts the pseudo file systems the harness needs.
fn mount_filesystems() {
    for (src, target, fstype, data) in [
        ("proc", "/proc", "proc", ""),
        ("sysfs", "/sys", "sysfs", ""),
        ("devtmpfs", "/dev", "devtmpfs", "mode=0755"),
        ("tmpfs", "/tmp", "tmpfs", "mode=1777"),
    ] {
        if let Err(e) = std::fs::create_dir_all(target) {
            eprintln!("uf-guest: mkdir {target} failed: {e}");
        }
        if let Err(e) = mount(src, target, fstype, data) {
            eprintln!("uf-guest: mount {fstype} on {target} failed: {e}");
        }
    }
}

/// Mounts one pseudo file system (for `cli::guest_faults`).
pub(super) fn mount_one(src: &str, target: &str, fstype: &str) -> io::Result<()> {
    mount(src, target, fstype, "")
}

/// Thin wrapper over `mount(2)` with no flags.
fn mount(src: &str, target: &str, fstype: &str, data: &str) -> io::Result<()> {
    let c = |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let (src, target, fstype, data) = (c(src)?, c(target)?, c(fstype)?, c(data)?);
    // SAFETY: all four pointers come from CStrings that live until the end of
    // this function, so they are valid NUL-terminated strings for the call;
    // the kernel copies them and keeps no reference.
    let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, data.as_ptr().cast()) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// If any of fds 0, 1, 2 is closed (no `/dev/console` in the initramfs),
/// opens `/dev/console` onto it.
fn ensure_std_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor flags of an integer fd;
        // it touches no memory.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        let console =
            match OpenOptions::new().read(fd == 0).write(fd != 0).custom_flags(libc::O_NOCTTY).open("/dev/console") {
                Ok(f) => f,
                Err(_) => continue,
            };
        // SAFETY: dup2 on two integer fds; `console` stays open across the
        // call and is closed afterwards by its own drop, leaving `fd`.
        unsafe { libc::dup2(console.as_raw_fd(), fd) };
    }
}

/// Opens the report serial port and puts its output side in raw mode.
fn open_report_tty() -> Option<File> {
    let tty = match OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(REPORT_TTY) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("uf-guest: open {REPORT_TTY} failed: {e}");
            return None;
        }
    };
    let fd = tty.as_raw_fd();
    // SAFETY: termios is a plain C struct for which all-zero bytes is a valid
    // value; it is fully overwritten by tcgetattr before being used.
    let mut tio: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open descriptor owned by `tty`, and `tio` is a live
    // local that tcgetattr fills in.
    if unsafe { libc::tcgetattr(fd, &mut tio) } != 0 {
        let e = io::Error::last_os_error();
        eprintln!("uf-guest: tcgetattr {REPORT_TTY} failed: {e}");
        return Some(tty);
    }
    tio.c_oflag &= !libc::OPOST;
    tio.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
    // SAFETY: `fd` is open and `tio` is a valid termios read back just above.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &tio) } != 0 {
        let e = io::Error::last_os_error();
        eprintln!("uf-guest: tcsetattr {REPORT_TTY} failed: {e}");
    }
    Some(tty)
}

/// As pid 1, reaps every child until the harness (`pid`) ends or `deadline` passes (then it is
/// killed).
fn reap_until_exit(pid: libc::pid_t, deadline: Option<Instant>) -> GuestExit {
    loop {
        let mut status: libc::c_int = 0;
        let flags = if deadline.is_some() { libc::WNOHANG } else { 0 };
        // SAFETY: waitpid writes the status into a live local c_int.
        let r = unsafe { libc::waitpid(-1, &mut status, flags) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return GuestExit::Code(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return GuestExit::Signal(libc::WTERMSIG(status));
            }
            continue;
        }
        if r > 0 {
            continue; // some orphan reparented to pid 1; keep reaping
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            eprintln!("uf-guest: waitpid failed: {e}");
            return GuestExit::SpawnFailed;
        }
        // r == 0: WNOHANG and nothing to reap yet.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            eprintln!("uf-guest: harness exceeded uf.timeout; killing it");
            // SAFETY: kill with an integer pid and signal; pid 1 killing
            // its own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Reap it (and anything else) so the kill has taken effect.
            // SAFETY: as above, a live local c_int receives the status.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            return GuestExit::Timeout;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the harness and waits for it, reaping all other children meanwhile.
fn run_child(cfg: &GuestConfig, report: Option<&File>) -> GuestExit {
    let stdout = match report.map(File::try_clone) {
        Some(Ok(f)) => Stdio::from(f),
        Some(Err(e)) => {
            eprintln!("uf-guest: dup {REPORT_TTY} failed: {e}; child stdout -> console");
            Stdio::inherit()
        }
        None => Stdio::inherit(),
    };
    let exe = if std::path::Path::new("/proc/self/exe").exists() { "/proc/self/exe" } else { "/init" };
    let exe = cfg.guest_exec.as_deref().unwrap_or(exe);
    let args: &[String] = if cfg.guest_exec.is_some() { &[] } else { &cfg.args };
    let child = Command::new(exe)
        .arg0(CHILD_ARGV0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/")
        // Only this pid 1 says so (docs/guest-only.md): with the kernel command line's uf.args=,
        // the executor then runs guest-only cases (crate::env::guest).
        .env(unshare_fuzz::env::guest::GUEST_VAR, unshare_fuzz::env::guest::GUEST_TOKEN)
        .env(unshare_fuzz::env::guest::FAULTS_VAR, if super::guest_faults::configure() { "1" } else { "0" })
        .current_dir("/")
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("uf-guest: spawn {exe} failed: {e}");
            return GuestExit::SpawnFailed;
        }
    };
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        eprintln!("uf-guest: child pid {} out of range", child.id());
        return GuestExit::SpawnFailed;
    };
    // `child` is never waited on through std: pid 1 reaps with waitpid(-1).
    drop(child);

    reap_until_exit(pid, cfg.timeout.map(|t| Instant::now() + t))
}

/// Waits until everything written to the terminal `fd` has been transmitted
/// (no-op if `fd` is not a terminal).
fn drain(fd: libc::c_int) {
    // SAFETY: isatty and tcdrain take an integer fd and touch no memory.
    unsafe {
        if libc::isatty(fd) == 1 {
            libc::tcdrain(fd);
        }
    }
}

/// Flushes file systems and powers the machine off.
fn power_off() -> ! {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    // SAFETY: reboot(2) with a constant command; only reached as pid 1 (checked
    // at the top of `guest_init_main`) inside the guest.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    eprintln!("uf-guest: reboot(RB_POWER_OFF) failed: {}", io::Error::last_os_error());
    // Exiting as pid 1 panics the kernel; with panic=-1 and -no-reboot qemu
    // then exits too.
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args_and_timeout() {
        let c = parse_cmdline("console=ttyS0 panic=-1 uf.args=replay,/corpus,--format,ktap uf.timeout=30\n");
        assert_eq!(c.args, ["replay", "/corpus", "--format", "ktap"]);
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn handles_quotes_empty_and_double_dash() {
        let c = parse_cmdline(r#"uf.args="run,--name,a b" -- uf.args=ignored"#);
        assert_eq!(c.args, ["run", "--name", "a b"]);
        assert_eq!(parse_cmdline("uf.args= quiet").args, Vec::<String>::new());
        assert_eq!(parse_cmdline("quiet").args, Vec::<String>::new());
        assert_eq!(parse_cmdline("uf.args=a,,b uf.args=c").args, ["c"]);
        assert_eq!(parse_cmdline("uf.timeout=x").timeout, None);
        // guest: uf.exec= names an initramfs program (absolute path only).
        assert_eq!(parse_cmdline("uf.args=run uf.exec=/repro").guest_exec.as_deref(), Some("/repro"));
        assert_eq!(parse_cmdline("uf.exec=repro").guest_exec, None);
        assert_eq!(parse_cmdline("uf.args=run").guest_exec, None);
    }

    #[test]
    fn formats_exit_status() {
        assert_eq!(GuestExit::Code(0).to_string(), "0");
        assert_eq!(GuestExit::Signal(9).to_string(), "signal 9");
        assert_eq!(GuestExit::Timeout.to_string(), "timeout");
    }
}
