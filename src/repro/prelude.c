/* ---- unshare-fuzz reproducer prelude (src/repro/prelude.c) -------------------------------
 *
 * What this program does, in the order of the Rust harness (src/exec/sandbox.rs, watch.rs,
 * child.rs, child_setup.rs, sibling.rs) and with the same operations:
 *   1. Outer sandbox, so that nothing a case does reaches the host: unshare(NEWNS|NEWUTS|
 *      NEWIPC|NEWNET|NEWPID), with NEWUSER and a "0 <uid> 1" map first when this process
 *      lacks CAP_SYS_ADMIN; make / private; fork pid 1 of the new pid namespace, which mounts
 *      its own /proc, chdirs to / and prepares the chroot tree on a private tmpfs at /tmp.
 *      The process that started stays outside and relays pid 1's exit status.
 *   2. pid 1 forks one case child under a watchdog. The child builds the setup in this order:
 *      pid-ns nesting (unshare(NEWPID) + fork, continuing in the child, up to the absolute
 *      level), user-ns nesting (unshare(NEWUSER) + "0 <outer> 1" maps), the zero limit (a
 *      private user ns, then max_<type>_namespaces = 0 in it), the foreign pid namespace
 *      (a helper makes user+pid namespaces and forks their init; pidfd_open + setns + fork),
 *      chroot, the fds (odd ones FD_CLOEXEC), the semaphore with a SEM_UNDO +1, cwd /proc and
 *      umask 077, the privilege, the siblings (raw clone() on their own stacks, answering
 *      commands over pipes), the parked threads, and the vfork child (clone(CLONE_VM|
 *      CLONE_VFORK)) that then runs the steps. Around every step it snapshots its state into
 *      shared memory; after the last step it runs the behavioural probes with the siblings.
 *      A clone3 step (exec/clone3.rs) calls the raw clone3 system call with the case's flags;
 *      the child, on a stack of its own, reads its /proc/thread-self/ns links, TID, ids and
 *      CapEff, reports them over a pipe and waits for the caller's kcmp before it ends.
 *   3. pid 1 compares every step with the expectations the model computed, as the harness's
 *      invariants do, prints each difference, removes the semaphore, and exits 0 (agree),
 *      1 (mismatch, timeout or crash) or 2 (could not run here).
 *
 * unshare is always called as syscall(SYS_unshare, (unsigned long)flags): glibc's unshare()
 * takes an int and would mangle bits 31..63. The identifier is poisoned below, so a call to
 * glibc's unshare() does not compile.
 *
 * The generated part before this prelude defines NLINKS, MAX_STEPS, SIBS, FDS, LINK_NAMES,
 * NFLAGS, FLAG_NAMES, FLAG_BITS, the U_CLONE_* bits, NERRNOS, ERRNO_VALUES, ERRNO_STRS, the
 * OP_* setup operation names, CHROOT_DIR, CHROOT_LEVELS and CLONE3_CGROUP_FD (from the
 * harness's own tables);
 * the part after it defines the case and main().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

/* Only raw_unshare() below may reach the kernel's unshare. */
#pragma GCC poison unshare

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define CAP_SYS_ADMIN_BIT (1ULL << 21)
#define NOBODY 65534
#define WATCHDOG_SECONDS 10
#define NONE INT_MIN           /* "not applicable" in kcmp, fd-flag, semaphore and probe slots */
#define SIBLING_STACK (256 * 1024)
#define VFORK_STACK (1024 * 1024)
#define REPLY_TIMEOUT_MS 1000  /* a dead sibling never answers */
#define NPROBES 6

enum privilege { PRIV_ROOT, PRIV_ROOT_WITHOUT_SYS_ADMIN, PRIV_NOBODY, PRIV_USER_NS };
enum chroot_kind { CHROOT_NONE, CHROOT_SUBDIR, CHROOT_ROOT };
enum step_kind {
	STEP_UNSHARE,
	STEP_FORK,
	STEP_FORK_EXIT,
	STEP_WRITE_MAPS,
	STEP_DROP_SYS_ADMIN,
	STEP_CHROOT_SUBDIR,
	STEP_CHROOT_ROOT,
	STEP_SPAWN_THREAD,
	STEP_CLONE3,
};
/* What a link does across a step; a negative value: unreadable with -errno. */
#define LINK_UNCHANGED 0
#define LINK_FRESH 1
#define LINK_BEFORE_OF(k) (100 + (k)) /* equals link k's value before the step */
#define LINK_AFTER_OF(k) (200 + (k))  /* equals link k's value after the step */
/* What kcmp against a sibling gives; a negative value: it fails with -errno. */
#define KC_UNMODELLED 1000
#define KC_SAME 1001
#define KC_DIFFERENT 1002
/* How a clone3 child's link relates to the caller's (model::clone3::ChildLink). */
#define CL_FRESH 1
#define CL_PARENT_BEFORE(k) (100 + (k)) /* the caller's link k before the call */
#define CL_PARENT_AFTER(k) (200 + (k))  /* the caller's link k after the call */
#define CL_CHILD(k) (300 + (k))         /* the child's own link k */
#define CLONE3_STACK (256 * 1024)
#define CLONE3_WAIT_MS 60000 /* longer than the watchdog: the watchdog decides, not a wait */
enum pid_expect { PID_UNCHANGED, PID_CHANGED, PID_ONE };
enum sem_expect { SEM_NONE, SEM_VALUE, SEM_ERROR };
/* kcmp types, in the order of the harness (model::expect::KCMP_TYPES) */
static const int KCMP_TYPE[5] = { 2 /* files */, 3 /* fs */, 1 /* vm */, 4 /* sighand */, 6 /* sysvsem */ };
static const char *const KCMP_NAME[5] = { "files", "fs", "vm", "sighand", "sysvsem" };
#define KCMP_FILE 0
/* sibling commands (exec/sibling.rs) */
#define CMD_OPEN_MEMFD 1
#define CMD_HAS_FD 2
#define CMD_CHDIR_UMASK 3
#define CMD_SEMVAL 4

struct expect_step {
	int kind;                     /* enum step_kind */
	const char *what;             /* the step in words */
	unsigned long long flags;     /* unshare: passed to the kernel, 64 bits */
	unsigned long long effective; /* unshare: after the implications, for the record */
	int expect_errno;             /* 0: success */
	const char *rule;             /* the model's deciding rule, or "success" */
	int link[NLINKS];             /* LINK_*, or -errno */
	unsigned uid, gid;            /* credentials after the step (uid = euid, gid = egid) */
	unsigned long long cap_eff;
	int pid;                      /* enum pid_expect */
	unsigned threads;             /* thread count after the step */
	int cwd_changes;              /* the cwd may change (chroot steps) */
	int check_sem;                /* the semaphore's value is checked if the call succeeds */
	int sem_kind, sem_value;      /* enum sem_expect; the value, or the errno for SEM_ERROR */
	int nsibs;                    /* kcmp expectations for this many siblings */
	int kcmp[SIBS][5];            /* KC_*, or -errno */
	int kcmp_fds[SIBS];           /* KCMP_FILE of each setup fd */
	/* clone3 steps only */
	unsigned long long exit_signal; /* clone_args.exit_signal */
	int undo_list_made;             /* the call gives the caller an undo list, even if it fails */
	int child;                      /* a child is expected (the call succeeds) */
	int child_link[NLINKS];         /* CL_* */
	int child_tid_one;              /* 1: the child reads TID 1; 0: the value clone3 returned */
	unsigned child_uid, child_gid;  /* its ids (uid = euid, gid = egid) and CapEff */
	unsigned long long child_cap;
	int child_kcmp_known;           /* someone can kcmp parent and child */
	int child_kcmp[5];              /* KC_* */
	int child_reaped;               /* waitpid(pid, 0) by the caller gives exit code 0, else ECHILD */
	int child_sigchld;              /* SIGCHLD reaches the caller: 1/0, or -1 (not modelled) */
	int child_pidfd, child_parent_tid;
};

struct repro_case {
	const char *title, *json, *model, *gen_kernel, *gen_sandbox;
	int privilege, threads;
	int pidns_level, userns_depth; /* absolute; -1: not asked for */
	const char *limit_zero;        /* the max_*_namespaces file to set to 0, or NULL */
	int foreign_pidns, chroot, fds, sem_undo, cwd_umask;
	int nsiblings;
	unsigned long sibling_flags[SIBS];
	const char *sibling_names[SIBS];
	int files_sibling, fs_sibling; /* index of the first sibling of that kind, or -1 */
	int vfork;
	int kcmp_available; /* kcmp(2) works where the expectations were computed */
	int nsteps;
	const struct expect_step *steps;
	/* final probes: -1 when the model expects nothing */
	int final_files_shared, final_close_is_shared, final_fs_shared;
	int final_sem_outside_set, final_sem_outside;
};

struct snap {
	unsigned long long ino[NLINKS];
	int err[NLINKS];
	int pid;
	unsigned uid, gid, euid, egid;
	unsigned long long cap_eff;
	unsigned threads; /* 0 if unreadable */
	int cwd_err;
	unsigned long long cwd_dev, cwd_ino;
	unsigned umask; /* UINT_MAX if unreadable */
	int semval;     /* NONE, the value, or -errno */
	int nsibs, nfds;
	int kcmp[SIBS][5];
	int kcmp_file[SIBS][FDS];
	int fd_flags[FDS];
};

/* What a clone3 child reported about itself, and what its caller saw (exec/clone3.rs). */
struct child_state {
	unsigned long long ino[NLINKS];
	int err[NLINKS];
	int tid;
	unsigned uid, gid, euid, egid;
	unsigned long long cap_eff;
	int kcmp[5];
	int kcmp_side; /* who ran kcmp parent/child: 1 the caller, 2 the child, 0 nobody */
};

struct child_obs {
	int present;  /* clone3 returned a child */
	int returned; /* what it returned */
	int reported; /* the child's report arrived */
	struct child_state state;
	int wait;     /* waitpid(pid, 0): the exit code, or -errno */
	int sigchld;  /* a SIGCHLD was pending afterwards */
	int pidfd;    /* a pidfd was stored */
	int parent_tid; /* the TID was stored at parent_tid */
};

/* Written by the case's processes into shared memory, read by pid 1. */
struct record {
	const char *setup_op; /* non-NULL: this setup operation failed with setup_errno */
	int setup_errno;
	int sem_id; /* the setup's semaphore, or -1 */
	struct snap before;
	int steps_done;
	struct { int err; struct snap after; struct child_obs child; } step[MAX_STEPS];
	int probed;
	int probe[NPROBES];
	int done;
};

struct sib {
	pid_t pid;
	int cmd_rd, cmd_wr, reply_rd, reply_wr;
};

/* Everything the case's process carries. */
struct ctx {
	const struct repro_case *c;
	struct record *r;
	int pid_nesting, user_nesting;
	struct sib sibs[SIBS];
	int nsibs;
	int fds[FDS];
	int nfds;
	int sem_id;
	unsigned outer_uid, outer_gid; /* euid/egid before the last NEWUSER (for WriteMaps) */
};

static const char *errno_name(int e, char *buf, size_t len)
{
	for (int i = 0; i < NERRNOS; i++)
		if (ERRNO_VALUES[i] == e)
			return ERRNO_STRS[i];
	snprintf(buf, len, "E%d", e);
	return buf;
}

static const char *result_name(int e, char *buf, size_t len)
{
	return e == 0 ? "success" : errno_name(e, buf, len);
}

static void print_flags(unsigned long long f)
{
	unsigned long long rest = f;
	int first = 1;
	printf("%#llx", f);
	if (f == 0)
		return;
	printf(" = ");
	for (int i = 0; i < NFLAGS; i++) {
		if (rest & FLAG_BITS[i]) {
			printf("%s%s", first ? "" : "|", FLAG_NAMES[i]);
			rest &= ~FLAG_BITS[i];
			first = 0;
		}
	}
	if (rest)
		printf("%s%#llx", first ? "" : "|", rest);
}

static long raw_unshare(unsigned long long flags)
{
	return syscall(SYS_unshare, (unsigned long)flags);
}

/* ---- capabilities (version 3: two 32-bit words per set) ---- */
struct cap_header { unsigned version; int pid; };
struct cap_data { unsigned effective, permitted, inheritable; };
#define CAP_V3 0x20080522

static int cap_get(unsigned long long *e, unsigned long long *p, unsigned long long *i)
{
	struct cap_header h = { CAP_V3, 0 };
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	*e = d[0].effective | ((unsigned long long)d[1].effective << 32);
	*p = d[0].permitted | ((unsigned long long)d[1].permitted << 32);
	*i = d[0].inheritable | ((unsigned long long)d[1].inheritable << 32);
	return 0;
}

static int cap_set(unsigned long long e, unsigned long long p, unsigned long long i)
{
	struct cap_header h = { CAP_V3, 0 };
	struct cap_data d[2] = {
		{ (unsigned)e, (unsigned)p, (unsigned)i },
		{ (unsigned)(e >> 32), (unsigned)(p >> 32), (unsigned)(i >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

/* Drops CAP_SYS_ADMIN from the effective, permitted and inheritable sets; 0 or -1 (errno). */
static int drop_sys_admin(void)
{
	unsigned long long e, p, i;
	if (cap_get(&e, &p, &i) != 0)
		return -1;
	return cap_set(e & ~CAP_SYS_ADMIN_BIT, p & ~CAP_SYS_ADMIN_BIT, i & ~CAP_SYS_ADMIN_BIT);
}

/* ---- files and /proc ---- */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	if (n >= 0 && n != (ssize_t)strlen(text))
		saved = EIO;
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Reads up to len - 1 bytes of a file and NUL-terminates them; the length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t len)
{
	size_t total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (total < len - 1) {
		ssize_t n = read(fd, buf + total, len - 1 - total);
		if (n < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	close(fd);
	buf[total] = 0;
	return (ssize_t)total;
}

/* "deny" to setgroups, then "0 <uid> 1" and "0 <gid> 1"; returns the failing path or NULL. */
static const char *write_id_maps(unsigned uid, unsigned gid)
{
	char line[64];
	/* No setgroups file (ENOENT: Linux before 3.19, gVisor): nothing to deny, as in the harness. */
	if (write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
		return "write /proc/self/setgroups";
	snprintf(line, sizeof(line), "0 %u 1\n", uid);
	if (write_file("/proc/self/uid_map", line) != 0)
		return "write /proc/self/uid_map";
	snprintf(line, sizeof(line), "0 %u 1\n", gid);
	if (write_file("/proc/self/gid_map", line) != 0)
		return "write /proc/self/gid_map";
	return NULL;
}

/* Threads: and Umask: of /proc/self/status (0 and UINT_MAX when unreadable). */
static void status_fields(unsigned *threads, unsigned *umask_now)
{
	char buf[8192];
	*threads = 0;
	*umask_now = UINT_MAX;
	if (read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return;
	char *p = strstr(buf, "\nThreads:");
	if (p)
		*threads = (unsigned)strtoul(p + 9, NULL, 10);
	p = strstr(buf, "\nUmask:");
	if (p)
		*umask_now = (unsigned)strtoul(p + 7, NULL, 8);
}

static int memfd(void)
{
	return (int)syscall(SYS_memfd_create, "uf", 0);
}

static long long fd_inode(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (long long)st.st_ino : 0;
}

/* ---- snapshots ---- */
static void snapshot(const struct ctx *x, struct snap *s)
{
	char path[64];
	struct stat st;
	unsigned long long e, p, i;
	for (int k = 0; k < NLINKS; k++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", LINK_NAMES[k]);
		if (stat(path, &st) == 0) {
			s->ino[k] = st.st_ino;
			s->err[k] = 0;
		} else {
			s->ino[k] = 0;
			s->err[k] = errno;
		}
	}
	s->pid = getpid();
	s->uid = getuid();
	s->gid = getgid();
	s->euid = geteuid();
	s->egid = getegid();
	s->cap_eff = cap_get(&e, &p, &i) == 0 ? e : 0;
	status_fields(&s->threads, &s->umask);
	if (stat(".", &st) == 0) {
		s->cwd_err = 0;
		s->cwd_dev = st.st_dev;
		s->cwd_ino = st.st_ino;
	} else {
		s->cwd_err = errno;
		s->cwd_dev = s->cwd_ino = 0;
	}
	s->semval = NONE;
	if (x && x->sem_id >= 0) {
		int v = semctl(x->sem_id, 0, GETVAL);
		s->semval = v >= 0 ? v : -errno;
	}
	s->nsibs = x ? x->nsibs : 0;
	s->nfds = x ? x->nfds : 0;
	for (int k = 0; k < s->nsibs; k++) {
		for (int t = 0; t < 5; t++) {
			long v = syscall(SYS_kcmp, s->pid, x->sibs[k].pid, KCMP_TYPE[t], 0UL, 0UL);
			s->kcmp[k][t] = v >= 0 ? (int)v : -errno;
		}
		for (int f = 0; f < s->nfds; f++) {
			unsigned long fd = (unsigned long)x->fds[f];
			long v = syscall(SYS_kcmp, s->pid, x->sibs[k].pid, KCMP_FILE, fd, fd);
			s->kcmp_file[k][f] = v >= 0 ? (int)v : -errno;
		}
	}
	for (int f = 0; f < s->nfds; f++) {
		int v = fcntl(x->fds[f], F_GETFD);
		s->fd_flags[f] = v >= 0 ? v : -errno;
	}
}

/* ---- siblings (exec/sibling.rs): they never allocate, and answer one command at a time ---- */
static int read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

static void serve(const long long cmd[3], long long reply[3])
{
	int fd;
	struct stat st;
	reply[0] = reply[1] = reply[2] = 0;
	switch (cmd[0]) {
	case CMD_OPEN_MEMFD:
		fd = memfd();
		if (fd < 0) {
			reply[0] = -errno;
		} else {
			reply[0] = fd;
			reply[1] = fd_inode(fd);
		}
		break;
	case CMD_HAS_FD:
		reply[0] = fstat((int)cmd[1], &st) == 0 && (cmd[2] == 0 || (long long)st.st_ino == cmd[2]);
		break;
	case CMD_CHDIR_UMASK:
		umask((mode_t)cmd[2]);
		reply[0] = chdir(cmd[1] == 0 ? "/" : "/proc") == 0 ? 0 : -errno;
		break;
	case CMD_SEMVAL:
		fd = semctl((int)cmd[1], 0, GETVAL);
		reply[0] = fd >= 0 ? fd : -errno;
		break;
	default:
		reply[0] = -EINVAL;
	}
}

static int sibling_main(void *arg)
{
	const struct sib *s = arg;
	int cmd_rd = s->cmd_rd, reply_wr = s->reply_wr;
	long long cmd[3], reply[3];
	while (read_exact(cmd_rd, cmd, sizeof(cmd))) {
		serve(cmd, reply);
		if (write(reply_wr, reply, sizeof(reply)) != (ssize_t)sizeof(reply))
			break;
	}
	_exit(0);
}

/* A private anonymous mapping for a clone stack; its top, or NULL (errno). */
static void *stack_top(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return p == MAP_FAILED ? NULL : p + len;
}

/* clone(flags) a sibling; 0 or the errno. */
static int start_sibling(struct sib *s, unsigned long flags)
{
	int a[2], b[2];
	if (pipe(a) != 0 || pipe(b) != 0)
		return errno;
	s->cmd_rd = a[0];
	s->cmd_wr = a[1];
	s->reply_rd = b[0];
	s->reply_wr = b[1];
	void *stack = stack_top(SIBLING_STACK);
	if (!stack)
		return errno;
	pid_t pid = clone(sibling_main, stack, (int)flags | SIGCHLD, s);
	if (pid < 0)
		return errno;
	s->pid = pid;
	return 0;
}

/* Sends one command and waits for the answer; 0 or the errno (ETIMEDOUT: no answer). */
static int ask(const struct sib *s, long long cmd, long long a, long long b, long long reply[3])
{
	long long words[3] = { cmd, a, b };
	struct pollfd pfd = { s->reply_rd, POLLIN, 0 };
	if (write(s->cmd_wr, words, sizeof(words)) != (ssize_t)sizeof(words))
		return errno ? errno : EIO;
	int n = poll(&pfd, 1, REPLY_TIMEOUT_MS);
	if (n < 0)
		return errno;
	if (n == 0)
		return ETIMEDOUT;
	return read_exact(s->reply_rd, reply, 3 * sizeof(long long)) ? 0 : EPIPE;
}

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

/* Waits for pid and ends this process with an exit status that mirrors it. */
static void wait_and_exit(pid_t pid)
{
	int status = 0;
	int code = 1;
	while (waitpid(pid, &status, 0) < 0) {
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
	/* A pidfd names the helper's child by its pid in our own pid namespace. */
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	if (setns(fd, (int)U_CLONE_NEWPID) != 0)
		setup_fail(x, OP_FOREIGN_PIDNS);
	close(fd);
	fork_continue(x, OP_FOREIGN_PIDNS);
}

/* chroot into the prepared directory (or "/") and chdir("/"); 0 or -1 (errno). */
static int do_chroot(int kind)
{
	if (chroot(kind == CHROOT_SUBDIR ? CHROOT_DIR : "/") != 0)
		return -1;
	return chdir("/");
}

static void apply_privilege(struct ctx *x, int privilege)
{
	switch (privilege) {
	case PRIV_ROOT:
		break;
	case PRIV_ROOT_WITHOUT_SYS_ADMIN:
		if (drop_sys_admin() != 0)
			setup_fail(x, OP_CAPSET_DROP_SYS_ADMIN);
		break;
	case PRIV_NOBODY:
		if (setgroups(0, NULL) != 0)
			setup_fail(x, OP_SETGROUPS);
		if (setresgid(NOBODY, NOBODY, NOBODY) != 0)
			setup_fail(x, OP_SETGID_NOBODY);
		if (setresuid(NOBODY, NOBODY, NOBODY) != 0)
			setup_fail(x, OP_SETUID_NOBODY);
		/* Without this the /proc/self files turn root-owned (spec 5.4 pitfall). */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
			setup_fail(x, OP_DUMPABLE);
		break;
	case PRIV_USER_NS:
		enter_mapped_userns(x, OP_UNSHARE_USER_NS);
		break;
	}
}

/* The whole setup, in the harness's order (exec/child_setup.rs); on failure it records the
 * operation and exits. */
static void build_setup(struct ctx *x)
{
	const struct repro_case *c = x->c;
	if (setpgid(0, 0) != 0)
		setup_fail(x, OP_SETPGID);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		setup_fail(x, OP_PDEATHSIG);
	for (int i = 0; i < x->pid_nesting; i++) {
		if (raw_unshare(U_CLONE_NEWPID) != 0)
			setup_fail(x, OP_PID_NESTING);
		fork_continue(x, OP_PID_NESTING);
	}
	for (int i = 0; i < x->user_nesting; i++)
		enter_mapped_userns(x, OP_USER_NESTING);
	if (c->limit_zero) {
		enter_mapped_userns(x, OP_WRITE_LIMIT);
		if (write_file(c->limit_zero, "0") != 0)
			setup_fail(x, OP_WRITE_LIMIT);
	}
	if (c->foreign_pidns)
		foreign_pidns(x);
	if (c->chroot != CHROOT_NONE && do_chroot(c->chroot) != 0)
		setup_fail(x, OP_CHROOT);
	for (int i = 0; i < c->fds && i < FDS; i++) {
		int fd = open("/", O_RDONLY | O_DIRECTORY | (i % 2 == 1 ? O_CLOEXEC : 0));
		if (fd < 0)
			setup_fail(x, OP_OPEN_FDS);
		x->fds[i] = fd;
		x->nfds = i + 1;
	}
	if (c->sem_undo) {
		struct sembuf op = { 0, 1, SEM_UNDO };
		x->sem_id = semget(IPC_PRIVATE, 1, 0666 | IPC_CREAT);
		if (x->sem_id < 0)
			setup_fail(x, OP_SEMAPHORE);
		x->r->sem_id = x->sem_id; /* pid 1 removes it at the end */
		if (semop(x->sem_id, &op, 1) != 0)
			setup_fail(x, OP_SEMAPHORE);
	}
	if (c->cwd_umask) {
		if (chdir("/proc") != 0)
			setup_fail(x, OP_CWD_UMASK);
		umask(077);
	}
	apply_privilege(x, c->privilege);
	x->outer_uid = geteuid();
	x->outer_gid = getegid();
	for (int k = 0; k < c->nsiblings && k < SIBS; k++) {
		int e = start_sibling(&x->sibs[k], c->sibling_flags[k]);
		if (e != 0) {
			errno = e;
			setup_fail(x, OP_SIBLING);
		}
		x->nsibs = k + 1;
	}
	for (int t = 0; t < c->threads; t++) {
		int rc = spawn_parked_thread();
		if (rc != 0) {
			errno = rc;
			setup_fail(x, OP_PTHREAD_CREATE);
		}
	}
}


/* ---- clone3 steps (exec/clone3.rs, sys/clone3.rs) ---- */
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

static void kcmp_all(pid_t a, pid_t b, int row[5])
{
	for (int t = 0; t < 5; t++) {
		long v = syscall(SYS_kcmp, a, b, KCMP_TYPE[t], 0UL, 0UL);
		row[t] = v >= 0 ? (int)v : -errno;
	}
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
	char path[64];
	struct stat st;
	memset(&m, 0, sizeof(m));
	for (int k = 0; k < NLINKS; k++) {
		snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", LINK_NAMES[k]);
		if (stat(path, &st) == 0)
			m.ino[k] = st.st_ino;
		else
			m.err[k] = errno;
	}
	m.tid = (int)syscall(SYS_gettid);
	m.uid = getuid();
	m.gid = getgid();
	m.euid = geteuid();
	m.egid = getegid();
	m.cap_eff = cap_get(&e, &p, &i) == 0 ? e : 0;
	if (a->vfork && m.ino[4] == a->parent_pid_ns && m.ino[8] == a->parent_user_ns) {
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

/* Waits until the child no longer exists (it is not ours to reap). */
static void ensure_gone(pid_t pid, int thread)
{
	if (thread) {
		for (int i = 0; i < CLONE3_WAIT_MS; i++) {
			if (syscall(SYS_tgkill, getpid(), pid, 0) != 0)
				return;
			usleep(1000);
		}
	} else {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0) {
			struct pollfd pfd = { fd, POLLIN, 0 };
			poll(&pfd, 1, CLONE3_WAIT_MS);
			close(fd);
		}
	}
}

/* One clone3 step; 0 or the errno. The child and the caller's view of it go to *o. */
static int run_clone3(struct ctx *x, const struct expect_step *st, struct child_obs *o)
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
	a.thread = (st->flags & U_CLONE_THREAD) != 0;
	a.vfork = (st->flags & U_CLONE_VFORK) != 0;
	a.parent = getpid();
	a.parent_pid_ns = thread_ns_inode("pid");
	a.parent_user_ns = thread_ns_inode("user");
	struct clone_args_v2 args = {
		.flags = st->flags,
		.pidfd = (unsigned long long)(unsigned long)&pidfd,
		.child_tid = (unsigned long long)(unsigned long)&child_tid,
		.parent_tid = (unsigned long long)(unsigned long)&parent_tid,
		.exit_signal = st->exit_signal,
		.stack = (unsigned long long)(unsigned long)((char *)top - CLONE3_STACK),
		.stack_size = CLONE3_STACK,
		.tls = tls_base(),
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

/* One step; 0 or the errno (a clone3 step's child goes to *child). */
static int run_step(struct ctx *x, const struct expect_step *st, struct child_obs *child)
{
	unsigned euid = geteuid(), egid = getegid();
	pid_t pid;
	const char *failed;
	switch (st->kind) {
	case STEP_UNSHARE:
		if (raw_unshare(st->flags) != 0)
			return errno;
		if (st->flags & U_CLONE_NEWUSER) {
			x->outer_uid = euid;
			x->outer_gid = egid;
		}
		return 0;
	case STEP_FORK:
		pid = fork();
		if (pid < 0)
			return errno;
		if (pid > 0)
			wait_and_exit(pid);
		return 0;
	case STEP_FORK_EXIT:
		pid = fork();
		if (pid < 0)
			return errno;
		if (pid == 0)
			_exit(0);
		return waitpid(pid, NULL, 0) < 0 ? errno : 0;
	case STEP_WRITE_MAPS:
		failed = write_id_maps(x->outer_uid, x->outer_gid);
		return failed ? errno : 0;
	case STEP_DROP_SYS_ADMIN:
		return drop_sys_admin() == 0 ? 0 : errno;
	case STEP_CHROOT_SUBDIR:
		return do_chroot(CHROOT_SUBDIR) == 0 ? 0 : errno;
	case STEP_CHROOT_ROOT:
		return do_chroot(CHROOT_ROOT) == 0 ? 0 : errno;
	case STEP_SPAWN_THREAD:
		return spawn_parked_thread();
	case STEP_CLONE3:
		return run_clone3(x, st, child);
	}
	return EINVAL;
}

/* The behavioural probes after the last step (exec/child.rs `probe`). */
static void probe(struct ctx *x)
{
	const struct repro_case *c = x->c;
	int *p = x->r->probe;
	long long rep[3];
	int e, fd;
	for (int i = 0; i < NPROBES; i++)
		p[i] = NONE;
	if (c->files_sibling >= 0 && c->files_sibling < x->nsibs) {
		const struct sib *s = &x->sibs[c->files_sibling];
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
	if (c->fs_sibling >= 0 && c->fs_sibling < x->nsibs) {
		struct stat cwd, root, now;
		int cwd_ok = stat(".", &cwd) == 0;
		int at_root = cwd_ok && stat("/", &root) == 0 && root.st_dev == cwd.st_dev && root.st_ino == cwd.st_ino;
		unsigned threads, before, after;
		status_fields(&threads, &before);
		e = ask(&x->sibs[c->fs_sibling], CMD_CHDIR_UMASK, at_root, before ^ 022, rep);
		if (e) {
			p[3] = p[4] = -e;
		} else {
			int now_ok = stat(".", &now) == 0;
			status_fields(&threads, &after);
			p[3] = now_ok != cwd_ok || (now_ok && (now.st_dev != cwd.st_dev || now.st_ino != cwd.st_ino));
			p[4] = after != before;
		}
	}
	if (x->sem_id >= 0 && x->nsibs > 0) {
		e = ask(&x->sibs[0], CMD_SEMVAL, x->sem_id, 0, rep);
		p[5] = e ? -e : (int)rep[0];
	}
	x->r->probed = 1;
}

/* Runs the steps as the caller, records everything, and ends the process. */
static void run_steps(struct ctx *x)
{
	const struct repro_case *c = x->c;
	struct record *r = x->r;
	snapshot(x, &r->before);
	for (int k = 0; k < c->nsteps; k++) {
		r->step[k].err = run_step(x, &c->steps[k], &r->step[k].child);
		snapshot(x, &r->step[k].after);
		r->steps_done = k + 1;
	}
	probe(x);
	r->done = 1;
	_exit(0);
}

static int vfork_entry(void *arg)
{
	run_steps(arg);
	return 0;
}

static void run_case(const struct repro_case *c, struct record *r, int pid_nesting, int user_nesting)
{
	struct ctx x;
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.r = r;
	x.pid_nesting = pid_nesting;
	x.user_nesting = user_nesting;
	x.sem_id = -1;
	for (int i = 0; i < FDS; i++)
		x.fds[i] = -1;
	build_setup(&x);
	if (c->vfork) {
		void *stack = stack_top(VFORK_STACK);
		if (!stack)
			setup_fail(&x, OP_VFORK);
		/* The parent stays blocked until the child exits, so x is never used concurrently. */
		pid_t pid = clone(vfork_entry, stack, (int)(U_CLONE_VM | U_CLONE_VFORK) | SIGCHLD, &x);
		if (pid < 0)
			setup_fail(&x, OP_VFORK);
		wait_and_exit(pid);
	}
	run_steps(&x);
}

/* ---- comparison, as the harness's invariants (src/check/invariants.rs) ---- */
static int differences;

static void differ(int step, const char *fmt, ...)
{
	va_list ap;
	if (step >= 0)
		printf("  MISMATCH (step %d): ", step);
	else
		printf("  MISMATCH (final probe): ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	differences++;
}

/* A namespace link as read: its inode, or the errno. */
static void show_ns(char *buf, size_t len, unsigned long long ino, int err)
{
	char eb[16];
	if (err)
		snprintf(buf, len, "%s", errno_name(err, eb, sizeof(eb)));
	else
		snprintf(buf, len, "%llu", ino);
}

static void show_link(char *buf, size_t len, const struct snap *s, int k)
{
	show_ns(buf, len, s->ino[k], s->err[k]);
}

static int same_link(const struct snap *a, int i, const struct snap *b, int j)
{
	return a->ino[i] == b->ino[j] && a->err[i] == b->err[j];
}

static void show_value(char *buf, size_t len, int v)
{
	char eb[16];
	if (v == NONE)
		snprintf(buf, len, "none");
	else if (v < 0)
		snprintf(buf, len, "%s", errno_name(-v, eb, sizeof(eb)));
	else
		snprintf(buf, len, "%d", v);
}

static int kcmp_matches(int want, int got)
{
	if (want == KC_UNMODELLED)
		return 1;
	if (want == KC_SAME)
		return got == 0;
	if (want == KC_DIFFERENT)
		return got == 1 || got == 2;
	return got == want; /* -errno */
}

static const char *kcmp_want(int want, char *buf, size_t len)
{
	char eb[16];
	if (want == KC_SAME)
		return "Same";
	if (want == KC_DIFFERENT)
		return "Different";
	snprintf(buf, len, "Error(%s)", errno_name(-want, eb, sizeof(eb)));
	return buf;
}

/* failure-changes-nothing: every observed difference. */
static void compare_unchanged(int step, const struct snap *a, const struct snap *b, const char *why, int skip_sysvsem)
{
	char x[32], y[32];
	for (int k = 0; k < NLINKS; k++) {
		if (!same_link(a, k, b, k)) {
			show_link(x, sizeof(x), a, k);
			show_link(y, sizeof(y), b, k);
			differ(step, "%s, but ns/%s changed %s -> %s", why, LINK_NAMES[k], x, y);
		}
	}
	if (a->pid != b->pid)
		differ(step, "%s, but pid changed %d -> %d", why, a->pid, b->pid);
	if (a->uid != b->uid || a->gid != b->gid || a->euid != b->euid || a->egid != b->egid)
		differ(step, "%s, but the ids changed %u/%u/%u/%u -> %u/%u/%u/%u", why, a->uid, a->gid, a->euid,
		       a->egid, b->uid, b->gid, b->euid, b->egid);
	if (a->cap_eff != b->cap_eff)
		differ(step, "%s, but CapEff changed %#llx -> %#llx", why, a->cap_eff, b->cap_eff);
	if (a->threads != b->threads)
		differ(step, "%s, but threads changed %u -> %u", why, a->threads, b->threads);
	if (a->cwd_err != b->cwd_err || a->cwd_dev != b->cwd_dev || a->cwd_ino != b->cwd_ino)
		differ(step, "%s, but the cwd changed", why);
	if (a->umask != b->umask)
		differ(step, "%s, but the umask changed %o -> %o", why, a->umask, b->umask);
	if (a->semval != b->semval) {
		show_value(x, sizeof(x), a->semval);
		show_value(y, sizeof(y), b->semval);
		differ(step, "%s, but the semaphore changed %s -> %s", why, x, y);
	}
	for (int k = 0; k < a->nsibs && k < b->nsibs; k++) {
		for (int t = 0; t < 5; t++)
			if (a->kcmp[k][t] != b->kcmp[k][t] && !(skip_sysvsem && t == 4))
				differ(step, "%s, but kcmp %s with sibling %d changed %d -> %d", why, KCMP_NAME[t], k,
				       a->kcmp[k][t], b->kcmp[k][t]);
		for (int f = 0; f < a->nfds && f < b->nfds; f++)
			if (a->kcmp_file[k][f] != b->kcmp_file[k][f])
				differ(step, "%s, but kcmp FILE of fd #%d with sibling %d changed %d -> %d", why, f, k,
				       a->kcmp_file[k][f], b->kcmp_file[k][f]);
	}
	for (int f = 0; f < a->nfds && f < b->nfds; f++)
		if (a->fd_flags[f] != b->fd_flags[f])
			differ(step, "%s, but the flags of fd #%d changed %d -> %d", why, f, a->fd_flags[f],
			       b->fd_flags[f]);
}

static int inode_in(unsigned long long ino, const struct snap *s)
{
	for (int k = 0; k < NLINKS; k++)
		if (s->err[k] == 0 && s->ino[k] == ino)
			return 1;
	return 0;
}

/* success-changes-exactly-predicted. */
static void compare_success(int step, const struct expect_step *x, const struct snap *sandbox,
			    const struct snap *initial, const struct snap *before, const struct snap *after)
{
	char eb[16], got[32], want[32];
	unsigned long long fresh[NLINKS];
	int nfresh = 0;
	for (int k = 0; k < NLINKS; k++) {
		int w = x->link[k];
		show_link(got, sizeof(got), after, k);
		if (w == LINK_UNCHANGED) {
			if (!same_link(before, k, after, k))
				differ(step, "ns/%s should not change, got %s", LINK_NAMES[k], got);
		} else if (w == LINK_FRESH) {
			int dup = 0;
			for (int j = 0; j < nfresh; j++)
				if (fresh[j] == after->ino[k])
					dup = 1;
			if (after->err[k])
				differ(step, "ns/%s should be a new namespace, but reading it gave %s", LINK_NAMES[k], got);
			else if (inode_in(after->ino[k], sandbox) || inode_in(after->ino[k], initial) ||
				 inode_in(after->ino[k], before))
				differ(step, "ns/%s should be a new namespace, but inode %s was alive before",
				       LINK_NAMES[k], got);
			else if (dup)
				differ(step, "ns/%s got inode %s, shared with another new namespace", LINK_NAMES[k], got);
			else
				fresh[nfresh++] = after->ino[k];
		} else if (w >= 200) {
			if (!same_link(after, k, after, w - 200)) {
				show_link(want, sizeof(want), after, w - 200);
				differ(step, "ns/%s should equal ns/%s %s, got %s", LINK_NAMES[k], LINK_NAMES[w - 200],
				       want, got);
			}
		} else if (w >= 100) {
			if (!same_link(after, k, before, w - 100)) {
				show_link(want, sizeof(want), before, w - 100);
				differ(step, "ns/%s should equal the earlier ns/%s %s, got %s", LINK_NAMES[k],
				       LINK_NAMES[w - 100], want, got);
			}
		} else if (after->err[k] != -w) {
			differ(step, "ns/%s should be unreadable with %s, got %s", LINK_NAMES[k],
			       errno_name(-w, eb, sizeof(eb)), got);
		}
	}
	if (after->uid != x->uid || after->euid != x->uid || after->gid != x->gid || after->egid != x->gid ||
	    after->cap_eff != x->cap_eff)
		differ(step, "credentials: expected uid/gid %u/%u CapEff %#llx, got uid %u gid %u euid %u egid %u CapEff %#llx",
		       x->uid, x->gid, x->cap_eff, after->uid, after->gid, after->euid, after->egid, after->cap_eff);
	if ((x->pid == PID_UNCHANGED && after->pid != before->pid) ||
	    (x->pid == PID_CHANGED && after->pid == before->pid) || (x->pid == PID_ONE && after->pid != 1))
		differ(step, "getpid %d -> %d, expected %s", before->pid, after->pid,
		       x->pid == PID_UNCHANGED ? "unchanged" : x->pid == PID_CHANGED ? "a new process" : "pid 1");
	if (after->threads != x->threads)
		differ(step, "threads %u -> %u, expected %u", before->threads, after->threads, x->threads);
	if (!x->cwd_changes &&
	    (after->cwd_err != before->cwd_err || after->cwd_dev != before->cwd_dev || after->cwd_ino != before->cwd_ino))
		differ(step, "the cwd changed");
	if (after->umask != before->umask)
		differ(step, "the umask changed %o -> %o", before->umask, after->umask);
	for (int f = 0; f < before->nfds && f < after->nfds; f++)
		if (after->fd_flags[f] != before->fd_flags[f])
			differ(step, "the flags of fd #%d changed %d -> %d", f, before->fd_flags[f], after->fd_flags[f]);
}

/* kcmp-matches-model. */
static void compare_kcmp(int step, const struct repro_case *c, const struct expect_step *x, const struct snap *after)
{
	char buf[32], v[32];
	for (int k = 0; k < x->nsibs; k++) {
		if (k >= after->nsibs) {
			differ(step, "no kcmp observed for sibling %d (%s)", k, c->sibling_names[k]);
			continue;
		}
		for (int t = 0; t < 5; t++) {
			if (!kcmp_matches(x->kcmp[k][t], after->kcmp[k][t])) {
				show_value(v, sizeof(v), after->kcmp[k][t]);
				differ(step, "kcmp %s with sibling %d (%s): expected %s, got %s", KCMP_NAME[t], k,
				       c->sibling_names[k], kcmp_want(x->kcmp[k][t], buf, sizeof(buf)), v);
			}
		}
		for (int f = 0; f < after->nfds; f++) {
			if (!kcmp_matches(x->kcmp_fds[k], after->kcmp_file[k][f])) {
				show_value(v, sizeof(v), after->kcmp_file[k][f]);
				differ(step, "kcmp FILE fd #%d with sibling %d (%s): expected %s, got %s", f, k,
				       c->sibling_names[k], kcmp_want(x->kcmp_fds[k], buf, sizeof(buf)), v);
			}
		}
	}
}

/* sysvsem-undo-detached: the semaphore's value after the call. */
static void compare_sem(int step, const struct expect_step *x, const struct snap *after)
{
	char got[32], eb[16];
	int ok = x->sem_kind == SEM_NONE    ? after->semval == NONE
		 : x->sem_kind == SEM_VALUE ? after->semval == x->sem_value
					    : after->semval == -x->sem_value;
	if (ok)
		return;
	show_value(got, sizeof(got), after->semval);
	if (x->sem_kind == SEM_VALUE)
		differ(step, "semaphore after the call: expected %d, got %s", x->sem_value, got);
	else if (x->sem_kind == SEM_ERROR)
		differ(step, "semaphore after the call: expected %s, got %s", errno_name(x->sem_value, eb, sizeof(eb)),
		       got);
	else
		differ(step, "semaphore after the call: expected none, got %s", got);
}

static void probe_is(const char *what, int got, int want)
{
	char v[32];
	if (got == want)
		return;
	show_value(v, sizeof(v), got);
	differ(-1, "%s: expected %s, observed %s", what, want ? "yes" : "no", v);
}

static void compare_probes(const struct repro_case *c, const struct record *r)
{
	const int *p = r->probe;
	char v[32];
	if (c->final_files_shared >= 0) {
		probe_is("the sibling's new fd is visible to us", p[0], c->final_files_shared);
		probe_is("our new fd is visible to the sibling", p[1], c->final_files_shared);
	}
	if (c->final_close_is_shared >= 0)
		probe_is("the sibling's fd 0 stays open after we close ours", p[2], !c->final_close_is_shared);
	if (c->final_fs_shared >= 0) {
		probe_is("the sibling's chdir moves our cwd", p[3], c->final_fs_shared);
		probe_is("the sibling's umask changes ours", p[4], c->final_fs_shared);
	}
	if (c->final_sem_outside_set && p[5] != c->final_sem_outside) {
		show_value(v, sizeof(v), p[5]);
		differ(-1, "the semaphore's value seen from the setup's IPC namespace: expected %d, observed %s",
		       c->final_sem_outside, v);
	}
}


/* ---- clone3-matches-model (src/check/clone3.rs) ---- */
static int same_child_link(const struct child_state *c, int k, const struct snap *s, int j)
{
	return c->ino[k] == s->ino[j] && c->err[k] == s->err[j];
}

static void compare_child_links(int step, const struct expect_step *x, const struct snap *sandbox,
				const struct snap *initial, const struct snap *before, const struct snap *after,
				const struct child_state *c)
{
	unsigned long long fresh[NLINKS];
	int nfresh = 0;
	char got[32];
	for (int k = 0; k < NLINKS; k++) {
		int w = x->child_link[k], ok;
		const char *what;
		char want[64];
		if (w >= 300) {
			ok = c->ino[k] == c->ino[w - 300] && c->err[k] == c->err[w - 300];
			snprintf(want, sizeof(want), "its own ns/%s", LINK_NAMES[w - 300]);
		} else if (w >= 200) {
			ok = same_child_link(c, k, after, w - 200);
			snprintf(want, sizeof(want), "the parent's ns/%s after", LINK_NAMES[w - 200]);
		} else if (w >= 100) {
			ok = same_child_link(c, k, before, w - 100);
			snprintf(want, sizeof(want), "the parent's ns/%s before", LINK_NAMES[w - 100]);
		} else {
			int dup = 0;
			for (int j = 0; j < nfresh; j++)
				if (fresh[j] == c->ino[k])
					dup = 1;
			ok = c->err[k] == 0 && !dup && !inode_in(c->ino[k], sandbox) && !inode_in(c->ino[k], initial) &&
			     !inode_in(c->ino[k], before) && !inode_in(c->ino[k], after);
			if (ok)
				fresh[nfresh++] = c->ino[k];
			snprintf(want, sizeof(want), "a namespace the parent never showed");
		}
		what = want;
		if (!ok) {
			show_ns(got, sizeof(got), c->ino[k], c->err[k]);
			differ(step, "child ns/%s is %s, expected %s", LINK_NAMES[k], got, what);
		}
	}
}

static void compare_clone3(int step, const struct expect_step *x, const struct snap *sandbox,
			   const struct snap *initial, const struct snap *before, const struct snap *after,
			   const struct child_obs *o)
{
	const struct child_state *c = &o->state;
	char buf[32], v[32], eb[16];
	/* The KCMP_SYSVSEM column against siblings: unchanged, except that a call that gave the
	 * caller an undo list makes every sibling compare different. */
	for (int k = 0; k < before->nsibs && k < after->nsibs; k++) {
		int was = before->kcmp[k][4], now = after->kcmp[k][4];
		int ok = x->undo_list_made && was >= 0 && was <= 2 ? now == 1 || now == 2 : now == was;
		if (!ok)
			differ(step, "kcmp sysvsem with sibling %d: %d -> %d, but %s", k, was, now,
			       x->undo_list_made ? "the call gave the caller an undo list"
						 : "the caller's undo list did not change");
	}
	if (x->child && !o->present) {
		differ(step, "no child was observed");
		return;
	}
	if (!x->child) {
		if (o->present)
			differ(step, "a child was observed for a failing call");
		return;
	}
	if (!o->reported) {
		differ(step, "the child did not report");
		return;
	}
	compare_child_links(step, x, sandbox, initial, before, after, c);
	if (x->child_tid_one ? c->tid != 1 : c->tid != o->returned)
		differ(step, "child TID %d (clone3 returned %d), expected %s", c->tid, o->returned,
		       x->child_tid_one ? "One" : "Returned");
	if (c->uid != x->child_uid || c->euid != x->child_uid || c->gid != x->child_gid || c->egid != x->child_gid ||
	    c->cap_eff != x->child_cap)
		differ(step, "child ids %u/%u %u/%u CapEff %#llx, expected %u/%u CapEff %#llx", c->uid, c->euid, c->gid,
		       c->egid, c->cap_eff, x->child_uid, x->child_gid, x->child_cap);
	if (x->child_kcmp_known && c->kcmp_side) {
		for (int t = 0; t < 5; t++) {
			if (!kcmp_matches(x->child_kcmp[t], c->kcmp[t])) {
				show_value(v, sizeof(v), c->kcmp[t]);
				differ(step, "kcmp %s parent/child: expected %s, got %s (%s side)", KCMP_NAME[t],
				       kcmp_want(x->child_kcmp[t], buf, sizeof(buf)), v,
				       c->kcmp_side == 1 ? "parent" : "child");
			}
		}
	} else if (x->child_kcmp_known != (c->kcmp_side != 0)) {
		differ(step, "kcmp parent/child: expected %s, but %s", x->child_kcmp_known ? "a comparison" : "none",
		       c->kcmp_side ? "one was made" : "nobody could compare");
	}
	if (x->child_reaped ? o->wait != 0 : o->wait != -ECHILD) {
		show_value(v, sizeof(v), o->wait);
		differ(step, "waitpid by the caller gave %s, expected %s", v,
		       x->child_reaped ? "0" : errno_name(ECHILD, eb, sizeof(eb)));
	}
	if (x->child_sigchld >= 0 && x->child_sigchld != o->sigchld)
		differ(step, "SIGCHLD to the caller: %s, expected %s", o->sigchld ? "yes" : "no",
		       x->child_sigchld ? "yes" : "no");
	if (o->pidfd != x->child_pidfd)
		differ(step, "pidfd stored: %s, expected %s", o->pidfd ? "yes" : "no", x->child_pidfd ? "yes" : "no");
	if (o->parent_tid != x->child_parent_tid)
		differ(step, "parent_tid stored: %s, expected %s", o->parent_tid ? "yes" : "no",
		       x->child_parent_tid ? "yes" : "no");
}

static int judge(const struct repro_case *c, const struct record *r, const struct snap *sandbox, int exit_code)
{
	char b1[16], b2[16];
	if (r->setup_op) {
		printf("BROKEN: setup failed: %s gave %s; the case could not be run here\n", r->setup_op,
		       errno_name(r->setup_errno, b1, sizeof(b1)));
		return 2;
	}
	for (int k = 0; k < r->steps_done; k++) {
		const struct expect_step *x = &c->steps[k];
		const struct snap *before = k == 0 ? &r->before : &r->step[k - 1].after;
		const struct snap *after = &r->step[k].after;
		int got = r->step[k].err;
		const char *want_s = result_name(x->expect_errno, b1, sizeof(b1));
		const char *got_s = result_name(got, b2, sizeof(b2));
		if (x->kind == STEP_UNSHARE) {
			printf("step %d: unshare(", k);
			print_flags(x->flags);
			printf(")\n  expected: %s (rule %s, effective flags %#llx)\n", want_s, x->rule, x->effective);
		} else {
			printf("step %d: %s\n  expected: %s (rule %s)\n", k, x->what, want_s, x->rule);
		}
		printf("step %d: observed %s\n", k, got_s);
		if (got != x->expect_errno)
			differ(k, "the model expected %s, the kernel returned %s", want_s, got_s);
		if (got != 0)
			compare_unchanged(k, before, after, "the call failed", x->kind == STEP_CLONE3 && x->undo_list_made);
		else if (x->expect_errno == 0)
			compare_success(k, x, sandbox, &r->before, before, after);
		if (c->kcmp_available)
			compare_kcmp(k, c, x, after);
		if (x->check_sem && got == 0)
			compare_sem(k, x, after);
		if (x->kind == STEP_CLONE3)
			compare_clone3(k, x, sandbox, &r->before, before, after, &r->step[k].child);
	}
	if (r->steps_done != c->nsteps || !r->done) {
		printf("  MISMATCH: the case's process ended after %d of %d steps\n", r->steps_done, c->nsteps);
		differences++;
	} else if (r->probed) {
		compare_probes(c, r);
	}
	if (differences) {
		printf("RESULT: MISMATCH, %d difference(s) between the kernel and the model\n", differences);
		return 1;
	}
	if (exit_code != 0) {
		printf("BROKEN: the case's process exited with status %d after its last step\n", exit_code);
		return 2;
	}
	printf("RESULT: the kernel agrees with the model\n");
	return 0;
}

/* ---- pid 1 of the sandbox: fork the case under a watchdog, then judge ---- */
static pid_t case_pid;
static volatile sig_atomic_t timed_out;
static int host_pid_level = -1;    /* pid-namespace level before the sandbox, -1 if unknown */
static int host_userns_depth = -1; /* user-namespace depth before the sandbox, -1 if unknown */
static int sandbox_userns;         /* the sandbox has its own user namespace */

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	kill(-case_pid, SIGKILL);
	kill(case_pid, SIGKILL);
}

/* Nesting counts from the sandbox's own position (exec/plan.rs); 0, or 2 after printing why not. */
static int plan(const struct repro_case *c, int *pid_nesting, int *user_nesting)
{
	int level = host_pid_level < 0 ? -1 : host_pid_level + 1;
	int depth = host_userns_depth < 0 ? -1 : host_userns_depth + sandbox_userns;
	*pid_nesting = *user_nesting = 0;
	if (c->pidns_level >= 0) {
		if (level < 0 || c->pidns_level < level) {
			printf("BROKEN: cannot reach pid-namespace level %d from level %d here\n", c->pidns_level, level);
			return 2;
		}
		*pid_nesting = c->pidns_level - level;
	}
	if (c->userns_depth >= 0) {
		if (depth < 0 || c->userns_depth < depth) {
			printf("BROKEN: cannot reach user-namespace depth %d from depth %d here\n", c->userns_depth, depth);
			return 2;
		}
		*user_nesting = c->userns_depth - depth;
	}
	return 0;
}

/* A private tmpfs on /tmp holding CHROOT_DIR with /proc bound inside and CHROOT_DIR again,
 * CHROOT_LEVELS deep (exec/sandbox.rs `prepare_chroot_tree`); NULL or what failed. */
static const char *prepare_chroot_tree(void)
{
	char dir[CHROOT_LEVELS * sizeof(CHROOT_DIR) + 1] = "", parent[sizeof(dir)], sub[sizeof(dir) + 8];
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, NULL) != 0)
		return "mount tmpfs on /tmp";
	for (int i = 0; i < CHROOT_LEVELS; i++) {
		strcat(dir, CHROOT_DIR);
		strcpy(parent, dir);
		*strrchr(parent, '/') = 0;
		if (mkdir(parent, 0755) != 0 && errno != EEXIST)
			return "mkdir";
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return "mkdir";
		snprintf(sub, sizeof(sub), "%s/proc", dir);
		if (mkdir(sub, 0755) != 0 && errno != EEXIST)
			return "mkdir";
		if (mount("/proc", sub, NULL, MS_BIND | MS_REC, NULL) != 0)
			return "bind /proc";
	}
	return NULL;
}

static int sandbox_pid1(const struct repro_case *c)
{
	struct snap sandbox;
	int status = 0, pid_nesting, user_nesting, code;
	struct record *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) {
		perror("repro: mmap");
		return 2;
	}
	memset(r, 0, sizeof(*r));
	r->sem_id = -1;
	if (plan(c, &pid_nesting, &user_nesting) != 0)
		return 2;
	snapshot(NULL, &sandbox);
	fflush(stdout);
	case_pid = fork();
	if (case_pid < 0) {
		perror("repro: fork of the case child");
		return 2;
	}
	if (case_pid == 0)
		run_case(c, r, pid_nesting, user_nesting);
	setpgid(case_pid, case_pid);
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_SECONDS);
	while (waitpid(case_pid, &status, 0) < 0 && errno == EINTR)
		;
	alarm(0);
	kill(-case_pid, SIGKILL); /* whatever the case left behind */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	if (r->sem_id >= 0)
		semctl(r->sem_id, 0, IPC_RMID); /* it lives in the sandbox's IPC namespace */
	if (timed_out) {
		printf("MISMATCH: timeout: the case was still running after %d s\n", WATCHDOG_SECONDS);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		printf("MISMATCH: crash: the case's process died by signal %d\n", WTERMSIG(status));
		return 1;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	return judge(c, r, &sandbox, code);
}

static void probe_host(void)
{
	char buf[8192];
	if (read_file("/proc/self/status", buf, sizeof(buf)) > 0) {
		char *p = strstr(buf, "\nNSpid:");
		if (p) {
			int fields = 0;
			for (p += 7; *p && *p != '\n'; p++)
				if ((*p == ' ' || *p == '\t') && p[1] >= '0' && p[1] <= '9')
					fields++;
			host_pid_level = fields - 1;
		}
	}
	if (read_file("/proc/self/uid_map", buf, sizeof(buf)) > 0) {
		unsigned long a, b, n;
		char extra;
		if (sscanf(buf, " %lu %lu %lu %c", &a, &b, &n, &extra) == 3 && a == 0 && b == 0 && n == 4294967295UL)
			host_userns_depth = 0;
	}
}

static int enter_sandbox_and_run(const struct repro_case *c)
{
	unsigned long long e = 0, p, i;
	unsigned uid = getuid(), gid = getgid();
	int userns = cap_get(&e, &p, &i) != 0 || !(e & CAP_SYS_ADMIN_BIT);
	unsigned long long flags = U_CLONE_NEWNS | U_CLONE_NEWUTS | U_CLONE_NEWIPC | U_CLONE_NEWNET | U_CLONE_NEWPID;
	int status;
	probe_host();
	sandbox_userns = userns;
	if (userns)
		flags |= U_CLONE_NEWUSER;
	if (raw_unshare(flags) != 0) {
		printf("BROKEN: cannot build the outer sandbox: unshare(%#llx) failed: %s%s\n", flags,
		       strerror(errno),
		       userns ? " (unprivileged user namespaces are needed when not run as root)" : "");
		return 2;
	}
	if (userns) {
		const char *failed = write_id_maps(uid, gid);
		if (failed) {
			printf("BROKEN: cannot build the outer sandbox: %s: %s\n", failed, strerror(errno));
			return 2;
		}
	}
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		/* As the harness (exec/sandbox.rs): a throwaway kernel (gVisor 2022 has no mount
		 * propagation, EINVAL) is disposable as a whole, so the run goes on there. */
		const char *t = getenv("UNSHARE_FUZZ_THROWAWAY_KERNEL");
		if (!t || strcmp(t, "1") != 0) {
			printf("BROKEN: cannot make / private in the sandbox: %s (on a throwaway kernel, "
			       "UNSHARE_FUZZ_THROWAWAY_KERNEL=1 goes on)\n", strerror(errno));
			return 2;
		}
		printf("note: / not made private (%s), on a throwaway kernel\n", strerror(errno));
	}
	if (sethostname("unshare-fuzz-sandbox", 20) != 0)
		printf("note: sethostname in the sandbox failed: %s\n", strerror(errno));
	printf("sandbox: namespaces %#llx%s\n", flags, userns ? " (with its own user namespace)" : "");
	fflush(stdout);
	pid_t pid1 = fork();
	if (pid1 < 0) {
		printf("BROKEN: cannot fork the sandbox's pid 1: %s\n", strerror(errno));
		return 2;
	}
	if (pid1 == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			printf("note: host /proc kept (mounting a new one failed: %s)\n", strerror(errno));
		if (chdir("/") != 0)
			printf("note: chdir(\"/\") failed: %s\n", strerror(errno));
		const char *failed = prepare_chroot_tree();
		if (failed)
			printf("note: no chroot tree (%s: %s): chroot setups will fail\n", failed, strerror(errno));
		int code = sandbox_pid1(c);
		fflush(stdout);
		_exit(code);
	}
	while (waitpid(pid1, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	printf("BROKEN: the sandbox's pid 1 died by signal %d\n", WTERMSIG(status));
	return 2;
}

static int repro_main(const struct repro_case *c)
{
	struct utsname u;
	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	printf("unshare-fuzz reproducer\ncase: %s\ncase (JSON): %s\n", c->title, c->json);
	printf("expectations: model %s, computed for kernel %s (%s)\n", c->model, c->gen_kernel, c->gen_sandbox);
	printf("running on: %s %s\n", u.sysname, u.release);
	if (strcmp(u.release, c->gen_kernel) != 0)
		printf("note: this is not the kernel the expectations were computed for\n");
	return enter_sandbox_and_run(c);
}
/* ---- end of prelude --------------------------------------------------------------------- */
