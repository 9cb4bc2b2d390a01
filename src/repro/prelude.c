/* ---- unshare-fuzz reproducer primitives (src/repro/prelude.c) -----------------------------
 *
 * The generated program is: the tables the harness generates (NLINKS, SIBS, FDS, LINK_NAMES,
 * LINK_PID, LINK_USER, the U_CLONE_* bits, ERRNO_STRS, the OP_* setup-operation names, CHROOT_DIR, the
 * depth limits), then these primitives (prelude.c: raw calls, snapshots, the sibling server;
 * setup.c: setup operations and behavioural probes; clone3.c: one clone3 call and its child;
 * checks.c: the comparisons; sandbox.c: the probe of this kernel, the outer sandbox and the
 * watchdog), then the case itself as straight-line code the harness generates from its plan:
 * case_setup() (the setup operations this case needs, in the executor's order,
 * exec/child/setup.rs), case_steps() (the steps and the probes) and case_judge() (every
 * expectation of the model, inline, as one check each).
 *
 * unshare is always called as syscall(SYS_unshare, (unsigned long)flags): glibc's unshare()
 * takes an int and would mangle bits 31..63. The identifier is poisoned below, so a call to
 * glibc's unshare() does not compile.
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
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <stddef.h>
#include <time.h>
#include <grp.h>
#include <unistd.h>

/* Only raw_unshare() below (and raw_unshare_int80() in setup.c, the i386 entry) may reach the
 * kernel's unshare. */
#pragma GCC poison unshare
/* A case calls only the primitives it needs. */
#pragma GCC diagnostic ignored "-Wunused-function"

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

/* What a link does across a step; a negative value: unreadable with -errno. */
#define LINK_UNCHANGED 0
#define LINK_FRESH 1
#define LINK_BEFORE_OF(k) (100 + (k)) /* equals link k's value before the step */
#define LINK_AFTER_OF(k) (200 + (k))  /* equals link k's value after the step */
#define LINK_AT_START(k) (300 + (k))  /* equals link k's value before the first step (setns back) */
/* What kcmp against a sibling gives; a negative value: it fails with -errno. */
#define KC_ANY 1000 /* not modelled: anything goes */
#define KC_SAME 1001
#define KC_DIFFERENT 1002
/* How a clone3 child's link relates to the caller's (model::clone3::ChildLink). */
#define CL_FRESH 1
#define CL_PARENT_BEFORE(k) (100 + (k)) /* the caller's link k before the call */
#define CL_PARENT_AFTER(k) (200 + (k))  /* the caller's link k after the call */
#define CL_CHILD(k) (300 + (k))         /* the child's own link k */
enum pid_expect { PID_UNCHANGED, PID_CHANGED, PID_ONE };
/* kcmp types, in the order of the harness (model::expect::KCMP_TYPES) */
static const int KCMP_TYPE[5] = { 2 /* files */, 3 /* fs */, 1 /* vm */, 4 /* sighand */, 6 /* sysvsem */ };
static const char *const KCMP_NAME[5] = { "files", "fs", "vm", "sighand", "sysvsem" };
#define KCMP_FILE 0
/* sibling commands (exec/child/sibling.rs) */
#define CMD_OPEN_MEMFD 1
#define CMD_HAS_FD 2
#define CMD_CHDIR_UMASK 3
#define CMD_SEMVAL 4

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

/* What a clone3 child reported about itself, and what its caller saw (exec/child/clone3.rs). */
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

/* The behavioural markers as the case saw them (markers.c): 1 reachable, 0 not, -errno, NONE. */
struct marks {
	int net, ipc;
	unsigned long long mnt; /* the mount id of /, unless mnt_err */
	int mnt_err;
	/* Life inside the namespaces (inside.c): the message queue (1, 0, -errno, NONE); network
	 * devices, devices up (or -errno); the loopback down 1, up 0, missing 2; cgroup file. */
	int mq, devs, up, lo;
	int cg_root, cg_err;
	unsigned long long cg_hash;
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
	struct marks mark[2]; /* before the first step, after the last */
	int uts_set;          /* the case set the UTS marker: 1, -errno, NONE */
	int uts_seen;         /* pid 1 saw it as its own hostname afterwards: 1, 0, -errno, NONE */
	int done;
};

struct sib {
	pid_t pid;
	int cmd_rd, cmd_wr, reply_rd, reply_wr;
};

/* Everything the case's process carries. */
struct ctx {
	struct record *r;
	int pid_nesting, user_nesting;
	struct sib sibs[SIBS];
	int nsibs;
	int fds[FDS];
	int nfds;
	int sem_id;
	unsigned outer_uid, outer_gid; /* euid/egid before the last NEWUSER (for WriteMaps) */
};

/* What this kernel offers, probed once by the sandbox's pid 1 before the case (as the
 * executor's probe does, exec/executor/probe.rs and exec/executor/headroom.rs); a check that needs what is
 * missing is turned off and named, never counted as a difference. */
static struct {
	int link_ok[NLINKS]; /* the link exists and names namespaces reliably */
	int kcmp;            /* kcmp(2) works */
	int clone3;          /* clone3(2) exists (not ENOSYS) */
	int pidfd_open;      /* pidfd_open(2) works */
	int pid_level;       /* the sandbox's pid-namespace level from the measured room, -1 unknown */
	int userns_depth;    /* its user-namespace depth from the measured room, -1 unknown */
	int int80;           /* unshare(0) through int $0x80 works (the i386 entry) */
} K = { .kcmp = 1, .clone3 = 1, .pidfd_open = 1, .pid_level = -1, .userns_depth = -1 };

/* Set by main() when a step calls unshare through int $0x80. */
static int case_uses_int80;

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

/* Reads this process's (or, with "thread-self", this thread's) links into ino/err. */
static void read_links(const char *self, unsigned long long ino[NLINKS], int err[NLINKS])
{
	char path[64];
	struct stat st;
	for (int k = 0; k < NLINKS; k++) {
		snprintf(path, sizeof(path), "/proc/%s/ns/%s", self, LINK_NAMES[k]);
		ino[k] = stat(path, &st) == 0 ? st.st_ino : 0;
		err[k] = ino[k] ? 0 : errno;
	}
}

static void kcmp_all(pid_t a, pid_t b, int row[5])
{
	for (int t = 0; t < 5; t++) {
		long v = syscall(SYS_kcmp, a, b, KCMP_TYPE[t], 0UL, 0UL);
		row[t] = v >= 0 ? (int)v : -errno;
	}
}

/* ---- snapshots ---- */
static void snapshot(const struct ctx *x, struct snap *s)
{
	struct stat st;
	unsigned long long e, p, i;
	read_links("self", s->ino, s->err);
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
		kcmp_all(s->pid, x->sibs[k].pid, s->kcmp[k]);
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

/* ---- siblings (exec/child/sibling.rs): they never allocate, and answer one command at a time ---- */
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

/* ---- end of prelude.c ---- */
