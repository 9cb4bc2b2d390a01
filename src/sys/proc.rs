//! Non-allocating readers and writers for `/proc` files, usable after fork.

use std::ffi::CStr;

use crate::abi::errno::Errno;

use super::{read_file_into, write_file};

/// Finds `key` at the start of a line of `text` and parses the decimal number after it.
pub fn field_u64(text: &[u8], key: &[u8]) -> Option<u64> {
    let mut start = 0;
    while start < text.len() {
        let end = text[start..].iter().position(|b| *b == b'\n').map_or(text.len(), |p| start + p);
        let line = &text[start..end];
        if line.starts_with(key) {
            let mut value: u64 = 0;
            let mut seen = false;
            for b in &line[key.len()..] {
                match b {
                    b' ' | b'\t' if !seen => {}
                    b'0'..=b'9' => {
                        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                        seen = true;
                    }
                    _ => break,
                }
            }
            return seen.then_some(value);
        }
        start = end + 1;
    }
    None
}

/// Finds `key` at the start of a line of `text` and parses the octal number after it.
pub fn field_octal(text: &[u8], key: &[u8]) -> Option<u32> {
    let pos = text.windows(key.len()).position(|w| w == key)?;
    if pos != 0 && text[pos - 1] != b'\n' {
        return None;
    }
    let mut value: u32 = 0;
    let mut seen = false;
    for b in &text[pos + key.len()..] {
        match b {
            b' ' | b'\t' if !seen => {}
            b'0'..=b'7' => {
                value = value.checked_mul(8)?.checked_add(u32::from(b - b'0'))?;
                seen = true;
            }
            _ => break,
        }
    }
    seen.then_some(value)
}

/// `Threads:` of `/proc/self/status`.
pub fn thread_count() -> Result<u32, Errno> {
    let mut buf = [0u8; 8192];
    let n = read_file_into(c"/proc/self/status", &mut buf)?;
    field_u64(&buf[..n], b"Threads:").map(|v| v as u32).ok_or(Errno(libc::EIO))
}

/// Writes the decimal form of `v` into `out`; returns the bytes written.
pub fn put_u32(out: &mut [u8], v: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut x = v;
    loop {
        digits[n] = b'0' + (x % 10) as u8;
        n += 1;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
}

/// Formats an id-map line `"<inside> <outside> <count>\n"` into `buf`.
pub fn map_line(buf: &mut [u8; 40], inside: u32, outside: u32, count: u32) -> &[u8] {
    let mut len = put_u32(&mut buf[..], inside);
    buf[len] = b' ';
    len += 1;
    len += put_u32(&mut buf[len..], outside);
    buf[len] = b' ';
    len += 1;
    len += put_u32(&mut buf[len..], count);
    buf[len] = b'\n';
    &buf[..=len]
}

/// Writes `deny` to setgroups and single-id maps `inside -> outside` for uid and gid of the
/// calling process (just after unshare(NEWUSER)).
pub fn write_id_maps(inside: u32, uid_outside: u32, gid_outside: u32) -> Result<(), (&'static CStr, Errno)> {
    let mut buf = [0u8; 40];
    // No setgroups file (ENOENT) is a kernel without it (Linux before 3.19, gVisor): nothing to deny.
    match write_file(c"/proc/self/setgroups", b"deny") {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err((c"/proc/self/setgroups", e)),
    }
    write_file(c"/proc/self/uid_map", map_line(&mut buf, inside, uid_outside, 1))
        .map_err(|e| (c"/proc/self/uid_map", e))?;
    write_file(c"/proc/self/gid_map", map_line(&mut buf, inside, gid_outside, 1))
        .map_err(|e| (c"/proc/self/gid_map", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let text = b"Name:\tx\nThreads:\t3\nSeccomp:\t2\n";
        assert_eq!(field_u64(text, b"Threads:"), Some(3));
        assert_eq!(field_u64(text, b"Seccomp:"), Some(2));
        assert_eq!(field_u64(text, b"Missing:"), None);
        assert_eq!(field_octal(b"Name:\tx\nUmask:\t0022\n", b"Umask:"), Some(0o22));
    }

    #[test]
    fn formats_map_lines() {
        let mut buf = [0u8; 40];
        assert_eq!(map_line(&mut buf, 0, 4_294_967_294, 1), b"0 4294967294 1\n");
        assert_eq!(map_line(&mut buf, 65534, 0, 1), b"65534 0 1\n");
    }

    #[test]
    fn reads_own_thread_count() {
        assert!(thread_count().unwrap() >= 1);
    }
}
