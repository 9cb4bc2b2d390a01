//! SysV semaphores: the one-semaphore set a case's setup makes (with a pending `SEM_UNDO`), its
//! value, and its removal. Integer arguments and stack buffers only; nothing allocates.

#![allow(unsafe_code)]

use crate::abi::errno::Errno;

use super::ret_int;

/// A SysV semaphore set of one, mode 0666, private key.
pub fn sem_create() -> Result<i32, Errno> {
    // SAFETY: integer arguments.
    ret_int(unsafe { libc::semget(libc::IPC_PRIVATE, 1, 0o666 | libc::IPC_CREAT) })
}

/// `semop` adding `delta` to semaphore 0 with SEM_UNDO.
pub fn sem_add_undo(id: i32, delta: i16) -> Result<(), Errno> {
    let mut op = libc::sembuf { sem_num: 0, sem_op: delta, sem_flg: libc::SEM_UNDO as libc::c_short };
    // SAFETY: op is one valid sembuf.
    ret_int(unsafe { libc::semop(id, &mut op, 1) }).map(|_| ())
}

/// `semctl(id, 0, GETVAL)`.
pub fn sem_value(id: i32) -> Result<i32, Errno> {
    // SAFETY: GETVAL takes no fourth argument.
    ret_int(unsafe { libc::semctl(id, 0, libc::GETVAL) })
}

/// `semctl(id, 0, IPC_RMID)`.
pub fn sem_remove(id: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no fourth argument.
    ret_int(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(|_| ())
}

/// `semop` adding `delta` to semaphore 0 without SEM_UNDO.
pub fn sem_add(id: i32, delta: i16) -> Result<(), Errno> {
    let mut op = libc::sembuf { sem_num: 0, sem_op: delta, sem_flg: 0 };
    // SAFETY: op is one valid sembuf.
    ret_int(unsafe { libc::semop(id, &mut op, 1) }).map(|_| ())
}

/// A private SysV shared memory segment of one page, mode 0600; returns its id. With
/// `attach_and_remove` it is also attached here (read-only, at an address the kernel picks) and
/// marked for removal, so it goes when its last attach does.
pub fn shm_create(attach_and_remove: bool) -> Result<i32, Errno> {
    // SAFETY: integer arguments.
    let id = ret_int(unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) })?;
    if attach_and_remove {
        // SAFETY: a new mapping at an address the kernel picks; nothing of ours is replaced.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
        if addr as isize == -1 {
            return Err(super::last_errno());
        }
        // SAFETY: IPC_RMID takes no buffer.
        ret_int(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) })?;
    }
    Ok(id)
}
