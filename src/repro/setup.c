/* ---- setup operations, simple steps and behavioural probes (src/repro/setup.c) ------------
 *
 * The generated case_setup() calls these in the executor's order (exec/child/setup.rs); each
 * records the operation that failed, with its errno, and ends the process (the setup is then
 * broken, never judged). The steps follow exec/child.rs, the probes exec/child.rs `probe`.
 */
/* ---- the case's process ---- */
static void *parked(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int spawn_parked_thread(void)
{
	pthread_t tid;
	int rc = pthread_create(&tid, NULL, parked, NULL);
	if (rc != 0)
		return rc;
	return pthread_detach(tid);
}

/* Records that a setup operation failed (with errno) and ends the process. */
static void setup_fail(struct ctx *x, const char *op)
{
	x->r->setup_errno = errno;
	x->r->setup_op = op;
	_exit(0);
}

/* A setup call that returns 0, or -1 with errno: a failure ends the setup. */
static void setup_op(struct ctx *x, const char *op, long rc)
{
	if (rc != 0)
		setup_fail(x, op);
}

/* Waits for pid and ends this process with an exit status that mirrors it. */
static void wait_and_exit(pid_t pid)
{
	int status = 0;
	int code = 1;
	while (waitpid(pid, &status, 0) < 0) {
		/* SIGCHLD is ignored (a clone3 step's CLONE_SIGHAND child that was a pid-ns init set
		 * it when it exited): the kernel reaped the child itself; the record says how it ended. */
		if (errno == ECHILD)
			_exit(0);
		if (errno != EINTR)
			_exit(1);
	}
	if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		code = 128 + WTERMSIG(status);
	_exit(code);
}

/* fork; the parent waits and exits, the child returns. */
static void fork_continue(struct ctx *x, const char *op)
{
	pid_t pid = fork();
	if (pid < 0)
		setup_fail(x, op);
	if (pid > 0)
		wait_and_exit(pid);
}

static void enter_mapped_userns(struct ctx *x, const char *op)
{
	unsigned uid = geteuid(), gid = getegid();
	if (raw_unshare(U_CLONE_NEWUSER) != 0)
		setup_fail(x, op);
	if (write_id_maps(uid, gid) != NULL)
		setup_fail(x, op);
}

/* A pid namespace owned by a child user namespace (spec 3 EINVAL (f)): a helper makes user+pid
 * namespaces and forks their init; we setns to it through a pidfd and fork. */
static void foreign_pidns(struct ctx *x)
{
	int p[2], pid = -1;
	if (pipe(p) != 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	pid_t helper = fork();
	if (helper < 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	if (helper == 0) {
		unsigned uid = geteuid(), gid = getegid();
		if (raw_unshare(U_CLONE_NEWUSER | U_CLONE_NEWPID) == 0 && write_id_maps(uid, gid) == NULL) {
			pid_t init = fork();
			if (init == 0)
				for (;;)
					pause();
			pid = init > 0 ? init : -errno;
		}
		if (write(p[1], &pid, sizeof(pid)) != (ssize_t)sizeof(pid))
			_exit(1);
		for (;;)
			pause();
	}
	ssize_t got = read(p[0], &pid, sizeof(pid));
	close(p[0]);
	close(p[1]);
	if (got != (ssize_t)sizeof(pid) || pid <= 0) {
		errno = pid < 0 ? -pid : EIO;
		setup_fail(x, OP_FOREIGN_PIDNS);
	}
	/* A pidfd names the helper's child by its pid in our own pid namespace (without
	 * pidfd_open: its /proc/<pid>/ns/pid). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	int fd = K.pidfd_open ? (int)syscall(SYS_pidfd_open, pid, 0) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	if (setns(fd, (int)U_CLONE_NEWPID) != 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	close(fd);
	fork_continue(x, OP_FOREIGN_PIDNS);
}

/* chroot into dir and chdir("/"); 0 or -1 (errno). */
static int do_chroot(const char *dir)
{
	if (chroot(dir) != 0)
		return -1;
	return chdir("/");
}

/* The pid-ns and user-ns nesting the plan asks for (counted from the sandbox's measured place). */
static void nest(struct ctx *x)
{
	for (int i = 0; i < x->pid_nesting; i++) {
		setup_op(x, OP_PID_NESTING, raw_unshare(U_CLONE_NEWPID));
		fork_continue(x, OP_PID_NESTING);
	}
	for (int i = 0; i < x->user_nesting; i++)
		enter_mapped_userns(x, OP_USER_NESTING);
}

/* One setup fd on "/", with these extra open flags. */
static void open_fd(struct ctx *x, int flags)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY | flags);
	if (fd < 0)
		setup_fail(x, OP_OPEN_FDS);
	x->fds[x->nfds++] = fd;
}

/* A SysV semaphore with a SEM_UNDO +1 (pid 1 removes it at the end). */
static void sem_undo(struct ctx *x)
{
	struct sembuf op = { 0, 1, SEM_UNDO };
	x->sem_id = semget(IPC_PRIVATE, 1, 0666 | IPC_CREAT);
	if (x->sem_id < 0)
		setup_fail(x, OP_SEMAPHORE);
	x->r->sem_id = x->sem_id;
	setup_op(x, OP_SEMAPHORE, semop(x->sem_id, &op, 1));
}

/* After sem_undo: -1 without SEM_UNDO, leaving 0 with the -1 adjustment pending. */
static void sem_clamp(struct ctx *x)
{
	struct sembuf op = { 0, -1, 0 };
	setup_op(x, OP_SEMAPHORE, semop(x->sem_id, &op, 1));
}

/* One more fd on "/" at number fd (the fd table grows past its 64 embedded slots). */
static void high_fd(struct ctx *x, int fd)
{
	int f = open("/", O_RDONLY | O_DIRECTORY);
	if (f < 0)
		setup_fail(x, OP_HIGH_FD);
	setup_op(x, OP_HIGH_FD, dup3(f, fd, 0) == fd ? 0 : -1);
	close(f);
}

/* SysV shm segments created here: one attached and marked for removal; with forced, first a
 * new IPC namespace with kernel.shm_rmid_forced=1 and an unattached segment in it. */
static void shm_segments(struct ctx *x, int forced)
{
	if (forced) {
		setup_op(x, OP_SHM, raw_unshare(U_CLONE_NEWIPC));
		/* Held open, as nsfs_bind's mount namespace is. */
		if (open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC) < 0)
			setup_fail(x, OP_SHM);
		setup_op(x, OP_SHM, write_file("/proc/sys/kernel/shm_rmid_forced", "1"));
		if (shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600) < 0)
			setup_fail(x, OP_SHM);
	}
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (id < 0 || shmat(id, NULL, SHM_RDONLY) == (void *)-1)
		setup_fail(x, OP_SHM);
	setup_op(x, OP_SHM, shmctl(id, IPC_RMID, NULL));
}

/* First of all: a private mount namespace with a newer mount namespace's nsfs file bound on
 * /tmp/uf-nsfs (a newer one: binding an older one's is refused, mnt_ns_loop). */
static void nsfs_bind(struct ctx *x)
{
	char src[64];
	int t = open("/tmp/uf-nsfs", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (t < 0)
		setup_fail(x, OP_NSFS_BIND);
	close(t);
	setup_op(x, OP_NSFS_BIND, raw_unshare(U_CLONE_NEWNS));
	int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		setup_fail(x, OP_NSFS_BIND);
	setup_op(x, OP_NSFS_BIND, raw_unshare(U_CLONE_NEWNS));
	int newer = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (newer < 0)
		setup_fail(x, OP_NSFS_BIND);
	setup_op(x, OP_NSFS_BIND, setns(own, (int)U_CLONE_NEWNS));
	snprintf(src, sizeof(src), "/proc/self/fd/%d", newer);
	setup_op(x, OP_NSFS_BIND, mount(src, "/tmp/uf-nsfs", NULL, MS_BIND, NULL));
	/* One mount after it: copy_mnt_ns stops at the last mount it copied. */
	t = open("/tmp/uf-nsfs-after", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (t < 0)
		setup_fail(x, OP_NSFS_BIND);
	close(t);
	setup_op(x, OP_NSFS_BIND, mount("/tmp/uf-nsfs-after", "/tmp/uf-nsfs-after", NULL, MS_BIND, NULL));
	/* own stays open: its inode number must not come back as a later step's namespace. */
	close(newer);
}

static void become_nobody(struct ctx *x)
{
	setup_op(x, OP_SETGROUPS, setgroups(0, NULL));
	setup_op(x, OP_SETGID_NOBODY, setresgid(NOBODY, NOBODY, NOBODY));
	setup_op(x, OP_SETUID_NOBODY, setresuid(NOBODY, NOBODY, NOBODY));
	/* Without this the /proc/self files turn root-owned (spec 5.4 pitfall). */
	setup_op(x, OP_DUMPABLE, prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
}

/* A sibling made with clone(flags), answering commands over pipes (exec/child/sibling.rs). */
static void add_sibling(struct ctx *x, unsigned long flags)
{
	int e = start_sibling(&x->sibs[x->nsibs], flags);
	if (e != 0) {
		errno = e;
		setup_fail(x, OP_SIBLING);
	}
	x->nsibs++;
}

static void add_thread(struct ctx *x)
{
	int rc = spawn_parked_thread();
	if (rc != 0) {
		errno = rc;
		setup_fail(x, OP_PTHREAD_CREATE);
	}
}

/* ---- steps: each returns 0 or the errno ---- */
/* unshare through the i386 entry: int $0x80 with the call number 310 in eax and the whole
 * 64-bit word in rbx; the entry's argument is ebx, so the kernel must see the low 32 bits only.
 * 0 or -1 with errno. Where the entry is missing the process dies of SIGSEGV. */
static long raw_unshare_int80(unsigned long long word)
{
#if defined(__x86_64__)
	long rc = 310;
	unsigned long long w = word;
	__asm__ volatile("xchg %%rbx, %1\n\tint $0x80\n\txchg %%rbx, %1"
			 : "+a"(rc), "+r"(w) : : "r8", "r9", "r10", "r11", "memory");
	rc = (int)rc;
	if (rc < 0) {
		errno = (int)-rc;
		return -1;
	}
	return 0;
#else
	(void)word;
	errno = ENOSYS;
	return -1;
#endif
}

/* unshare(word) through the 64-bit entry, or through int $0x80 (the kernel then sees the low
 * 32 bits); after a NEWUSER, WriteMaps maps the ids from before it. */
static int unshare_through(struct ctx *x, unsigned long long word, int int80)
{
	unsigned euid = geteuid(), egid = getegid();
	if ((int80 ? raw_unshare_int80(word) : raw_unshare(word)) != 0)
		return errno;
	if ((unsigned)word & U_CLONE_NEWUSER) {
		x->outer_uid = euid;
		x->outer_gid = egid;
	}
	return 0;
}

static int step_unshare(struct ctx *x, unsigned long long flags)
{
	return unshare_through(x, flags, 0);
}

static int step_unshare_int80(struct ctx *x, unsigned long long word)
{
	return unshare_through(x, word, 1);
}

/* fork; the parent waits and mirrors the child's exit, the child goes on. */
static int step_fork(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid > 0)
		wait_and_exit(pid);
	return 0;
}

static int step_fork_exit(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	return waitpid(pid, NULL, 0) < 0 && errno != ECHILD ? errno : 0; /* ECHILD: reaped by the kernel */
}

static int step_write_maps(struct ctx *x)
{
	return write_id_maps(x->outer_uid, x->outer_gid) ? errno : 0;
}

static int step_rc(long rc)
{
	return rc == 0 ? 0 : errno;
}

/* After a step: its result and a snapshot. */
static void step_done(struct ctx *x, int k, int err)
{
	x->r->step[k].err = err;
	snapshot(x, &x->r->step[k].after);
	x->r->steps_done = k + 1;
}

/* ---- the behavioural probes after the last step (exec/child.rs `probe`) ---- */
/* With a FILES sibling: does its new fd show here, ours there, and does closing fd 0 here close it there. */
static void probe_files(struct ctx *x, int sibling)
{
	int *p = x->r->probe;
	long long rep[3];
	int e, fd;
	{
		const struct sib *s = &x->sibs[sibling];
		e = ask(s, CMD_OPEN_MEMFD, 0, 0, rep);
		if (e)
			p[0] = -e;
		else if (rep[0] >= 0)
			p[0] = fd_inode((int)rep[0]) == rep[1] && rep[1] != 0;
		else
			p[0] = (int)rep[0];
		fd = memfd();
		if (fd < 0) {
			p[1] = -errno;
		} else {
			e = ask(s, CMD_HAS_FD, fd, fd_inode(fd), rep);
			p[1] = e ? -e : rep[0] == 1;
		}
		if (x->nfds > 0) {
			int fd0 = x->fds[0];
			long long ino = fd_inode(fd0);
			if (close(fd0) != 0) {
				p[2] = -errno;
			} else {
				e = ask(s, CMD_HAS_FD, fd0, ino, rep);
				p[2] = e ? -e : rep[0] == 1;
			}
		}
	}
	x->r->probed = 1;
}

/* With an FS sibling: does its chdir move our cwd, its umask change ours. */
static void probe_fs(struct ctx *x, int sibling)
{
	int *p = x->r->probe;
	long long rep[3];
	int e;
	{
		struct stat cwd, root, now;
		int cwd_ok = stat(".", &cwd) == 0;
		int at_root = cwd_ok && stat("/", &root) == 0 && root.st_dev == cwd.st_dev && root.st_ino == cwd.st_ino;
		unsigned threads, before, after;
		status_fields(&threads, &before);
		e = ask(&x->sibs[sibling], CMD_CHDIR_UMASK, at_root, before ^ 022, rep);
		if (e) {
			p[3] = p[4] = -e;
		} else {
			int now_ok = stat(".", &now) == 0;
			status_fields(&threads, &after);
			p[3] = now_ok != cwd_ok || (now_ok && (now.st_dev != cwd.st_dev || now.st_ino != cwd.st_ino));
			p[4] = after != before;
		}
	}
	x->r->probed = 1;
}

/* With a semaphore and a sibling: the value the first sibling reads. */
static void probe_sem(struct ctx *x)
{
	long long rep[3];
	int e = ask(&x->sibs[0], CMD_SEMVAL, x->sem_id, 0, rep);
	x->r->probe[5] = e ? -e : (int)rep[0];
	x->r->probed = 1;
}

/* Runs body in a child made with clone(CLONE_VM|CLONE_VFORK), as the vfork setup does; this
 * process waits and mirrors its exit. */
static void in_vfork_child(struct ctx *x, int (*body)(void *))
{
	void *stack = stack_top(VFORK_STACK);
	if (!stack)
		setup_fail(x, OP_VFORK);
	/* The parent stays blocked until the child exits, so x is never used concurrently. */
	pid_t pid = clone(body, stack, (int)(U_CLONE_VM | U_CLONE_VFORK) | SIGCHLD, x);
	if (pid < 0)
		setup_fail(x, OP_VFORK);
	wait_and_exit(pid);
}
/* ---- end of setup.c ---- */

/* setns steps (issue 16 class 4, exec/child/setns.rs): the descriptors opened before the first
 * step, by target in case::SetnsTarget order (NULL: a pidfd of a reaped child), or -errno. */
static const char *const SETNS_LINKS[] = { "pid_for_children", "time_for_children", "pid", "time", "uts", "user", NULL };
static int setns_fds[7] = { NONE, NONE, NONE, NONE, NONE, NONE, NONE };

/* A pidfd of a child that is surely alive when it is opened, then killed and reaped. */
static int setns_exited_pidfd(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		for (;;)
			pause();
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int e = fd < 0 ? errno : 0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return fd < 0 ? -e : fd;
}

static int setns_open(int target)
{
	char path[64];
	if (!SETNS_LINKS[target])
		return setns_exited_pidfd();
	snprintf(path, sizeof(path), "/proc/self/ns/%s", SETNS_LINKS[target]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void setns_open_at_start(int target)
{
	if (setns_fds[target] == NONE)
		setns_fds[target] = setns_open(target);
}

/* setns on the target's descriptor; the kernel reads an int. 0 or the errno. */
static int step_setns(int target, int at_start, unsigned long long nstype)
{
	int fd = at_start ? setns_fds[target] : setns_open(target);
	if (fd < 0)
		return fd == NONE ? EBADF : -fd;
	int rc = setns(fd, (int)(unsigned)nstype) ? errno : 0;
	if (!at_start)
		close(fd);
	return rc;
}
