/* ---- one clone3 call and its child (src/repro/clone3.c; exec/child/clone3.rs, sys/clone3.rs) -----
 *
 * The call gets the case's flags, a pidfd slot, the child and parent TID slots, an exit
 * signal, a stack of its own and the TLS base; CLONE_INTO_CGROUP gets CLONE3_CGROUP_FD, a
 * descriptor that is never open. The child reads its own /proc/thread-self/ns links, TID, ids
 * and CapEff, reports them over a pipe and waits for the caller's kcmp before it ends.
 */
#define CLONE3_STACK (256 * 1024)
#define CLONE3_WAIT_MS 60000 /* longer than the watchdog: the watchdog decides, not a wait */

struct clone_args_v2 {
	unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};

/* What the clone3 child reads (in the caller's frame; a copy of it without CLONE_VM). */
struct clone3_child_args {
	int report_wr, go_rd, thread, vfork;
	pid_t parent;
	unsigned long long parent_pid_ns, parent_user_ns;
};

/* clone3(args, 88); in the child, fn(arg) runs on the stack of args and never returns. glibc's
 * syscall() cannot be used: the child would return into the caller's frames on another stack. */
static long raw_clone3(struct clone_args_v2 *args, int (*fn)(void *), void *arg)
{
#if defined(__x86_64__)
	long rc;
	register void *r12 __asm__("r12") = arg;
	register int (*r13)(void *) __asm__("r13") = fn;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r12, %%rdi\n\t"
			 "call *%%r13\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(rc)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return rc;
#else
	(void)args;
	(void)fn;
	(void)arg;
	return -ENOSYS; /* as the harness: clone3 steps are implemented for x86_64 only */
#endif
}

static unsigned long long tls_base(void)
{
#if defined(__x86_64__)
	unsigned long long base = 0;
	return syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &base) == 0 ? base : 0;
#else
	return 0;
#endif
}

static unsigned long long thread_ns_inode(const char *name)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", name);
	return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static int wait_readable(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	return poll(&pfd, 1, CLONE3_WAIT_MS) > 0;
}

static int take_sigchld(void)
{
	sigset_t set;
	struct timespec zero = { 0, 0 };
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	return sigtimedwait(&set, NULL, &zero) == SIGCHLD;
}

/* The child: its own view, one report, then the end of this process (or thread). */
static int clone3_child(void *arg)
{
	const struct clone3_child_args *a = arg;
	struct child_state m;
	unsigned long long e, p, i;
	memset(&m, 0, sizeof(m));
	read_links("thread-self", m.ino, m.err);
	m.tid = (int)syscall(SYS_gettid);
	m.uid = getuid();
	m.gid = getgid();
	m.euid = geteuid();
	m.egid = getegid();
	m.cap_eff = cap_get(&e, &p, &i) == 0 ? e : 0;
	if (a->vfork && m.ino[LINK_PID] == a->parent_pid_ns && m.ino[LINK_USER] == a->parent_user_ns) {
		/* The caller is blocked until this child exits: it compares itself while it can still
		 * name the caller (same pid namespace) and has ptrace rights over it (same user ns). */
		kcmp_all(m.tid, a->parent, m.kcmp);
		m.kcmp_side = 2;
	}
	if (write(a->report_wr, &m, sizeof(m)) != (ssize_t)sizeof(m)) {
		/* the caller then sees no report */
	}
	if (!a->vfork && wait_readable(a->go_rd)) {
		char b;
		if (read(a->go_rd, &b, 1) != 1) {
			/* the caller is gone: end all the same */
		}
	}
	if (a->thread)
		for (;;)
			syscall(SYS_exit, 0);
	_exit(0);
}

/* The process is a zombie (its /proc/<pid>/stat says Z). */
static int is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

/* Waits until the child no longer exists (it is not ours to reap). */
static void ensure_gone(pid_t pid, int thread)
{
	if (thread) {
		for (int i = 0; i < CLONE3_WAIT_MS; i++) {
			if (syscall(SYS_tgkill, getpid(), pid, 0) != 0)
				return;
			usleep(1000);
		}
	} else if (!K.pidfd_open) {
		for (int i = 0; i < CLONE3_WAIT_MS && kill(pid, 0) == 0 && !is_zombie(pid); i++)
			usleep(1000);
	} else {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0) {
			struct pollfd pfd = { fd, POLLIN, 0 };
			poll(&pfd, 1, CLONE3_WAIT_MS);
			close(fd);
		}
	}
}

/* One clone3 step with set_tid (a pointer, 0 for none) and set_tid_size; 0 or the errno. The
 * child and the caller's view of it go to *o. */
static int step_clone3_tid(struct ctx *x, unsigned long long flags, unsigned long long exit_signal,
			   unsigned long long set_tid, unsigned long long set_tid_size, struct child_obs *o)
{
	int report[2], go[2], pidfd = -1, parent_tid = 0, child_tid = 0, err = 0;
	sigset_t chld, old;
	struct clone3_child_args a;
	memset(o, 0, sizeof(*o));
	if (pipe(report) != 0 || pipe(go) != 0)
		setup_fail(x, OP_CLONE3_PREP);
	void *top = stack_top(CLONE3_STACK);
	if (!top)
		setup_fail(x, OP_CLONE3_PREP);
	a.report_wr = report[1];
	a.go_rd = go[0];
	a.thread = (flags & U_CLONE_THREAD) != 0;
	a.vfork = (flags & U_CLONE_VFORK) != 0;
	a.parent = getpid();
	a.parent_pid_ns = thread_ns_inode("pid");
	a.parent_user_ns = thread_ns_inode("user");
	struct clone_args_v2 args = {
		.flags = flags,
		.pidfd = (unsigned long long)(unsigned long)&pidfd,
		.child_tid = (unsigned long long)(unsigned long)&child_tid,
		.parent_tid = (unsigned long long)(unsigned long)&parent_tid,
		.exit_signal = exit_signal,
		.stack = (unsigned long long)(unsigned long)((char *)top - CLONE3_STACK),
		.stack_size = CLONE3_STACK,
		.tls = tls_base(),
		.set_tid = set_tid,
		.set_tid_size = set_tid_size,
		.cgroup = CLONE3_CGROUP_FD,
	};
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, &old) != 0)
		setup_fail(x, OP_CLONE3_PREP);
	while (take_sigchld())
		;
	long rc = raw_clone3(&args, clone3_child, &a);
	if (rc < 0) {
		err = (int)-rc;
	} else {
		pid_t pid = (pid_t)rc;
		int status;
		o->present = 1;
		o->returned = pid;
		o->reported = wait_readable(report[0]) && read_exact(report[0], &o->state, sizeof(o->state));
		if (!a.vfork) {
			kcmp_all(getpid(), pid, o->state.kcmp);
			o->state.kcmp_side = 1;
			if (write(go[1], "g", 1) != 1) {
				/* the child then ends after its own wait */
			}
		}
		if (waitpid(pid, &status, 0) == pid) {
			o->wait = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		} else {
			o->wait = -errno;
			ensure_gone(pid, a.thread);
		}
		o->sigchld = take_sigchld();
		o->pidfd = pidfd >= 0;
		o->parent_tid = parent_tid == pid && pid > 0;
		if (pidfd >= 0)
			close(pidfd);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(report[0]);
	close(report[1]);
	close(go[0]);
	close(go[1]);
	return err;
}

/* One clone3 step without set_tid. */
static int step_clone3(struct ctx *x, unsigned long long flags, unsigned long long exit_signal, struct child_obs *o)
{
	return step_clone3_tid(x, flags, exit_signal, 0, 0, o);
}

/* One clone3 step with set_tid: the listed pids (innermost pid namespace first), zeros up to
 * MAX_PID_NS_LEVEL entries, or a null pointer; set_tid_size as the case writes it. */
static int step_clone3_set_tid(struct ctx *x, unsigned long long flags, unsigned long long exit_signal, int null,
			       unsigned long long size, int t0, int t1, int t2, int t3, struct child_obs *o)
{
	int tids[32] = { t0, t1, t2, t3 };
	return step_clone3_tid(x, flags, exit_signal, null ? 0 : (unsigned long long)(unsigned long)tids, size, o);
}

/* ---- end of clone3.c ---- */
