/* ---- unshare-fuzz reproducer prelude (src/repro/prelude.c) -------------------------------
 *
 * What this program does, in the order of the Rust harness (src/exec/sandbox.rs, watch.rs,
 * child.rs):
 *   1. Outer sandbox, so that nothing a case does reaches the host: unshare(NEWNS|NEWUTS|
 *      NEWIPC|NEWNET|NEWPID), with NEWUSER and a "0 <uid> 1" map first when this process
 *      lacks CAP_SYS_ADMIN; make / private; fork pid 1 of the new pid namespace, which mounts
 *      its own /proc. The process that started stays outside and relays pid 1's exit status.
 *   2. pid 1 forks one case child under a watchdog. The child builds the setup (privilege,
 *      then parked threads), snapshots its state, makes each raw unshare call, snapshots
 *      again, and writes everything to shared memory before _exit.
 *   3. pid 1 compares every step with the expectations the model computed, prints each
 *      difference, and exits 0 (agree), 1 (mismatch, timeout or crash) or 2 (could not run).
 *
 * unshare is always called as syscall(SYS_unshare, (unsigned long)flags): glibc's unshare()
 * takes an int and would mangle bits 31..63.
 *
 * The generated part before this prelude defines NLINKS, MAX_STEPS, LINK_NAMES, NFLAGS,
 * FLAG_NAMES, FLAG_BITS, NERRNOS, ERRNO_VALUES and ERRNO_STRS (from the harness's tables);
 * the part after it defines the case and main().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#define U_CLONE_NEWNS 0x00020000UL
#define U_CLONE_NEWUTS 0x04000000UL
#define U_CLONE_NEWIPC 0x08000000UL
#define U_CLONE_NEWUSER 0x10000000UL
#define U_CLONE_NEWPID 0x20000000UL
#define U_CLONE_NEWNET 0x40000000UL
#define CAP_SYS_ADMIN_BIT (1ULL << 21)
#define NOBODY 65534
#define WATCHDOG_SECONDS 10

enum privilege { PRIV_ROOT, PRIV_ROOT_WITHOUT_SYS_ADMIN, PRIV_NOBODY, PRIV_USER_NS };
enum link_expect { LINK_UNCHANGED = 0, LINK_FRESH = 1 }; /* a negative value: unreadable, -errno */

struct expect_step {
	unsigned long long flags;     /* passed to the kernel, 64 bits */
	unsigned long long effective; /* after the implications, for the record */
	int expect_errno;             /* 0: success */
	const char *rule;             /* the model's check row, or "success" */
	int link[NLINKS];             /* enum link_expect, or -errno */
	int creds_new;                /* 0: uid/gid/CapEff unchanged; 1: the values below */
	unsigned uid, gid;
	unsigned long long cap_eff;
};

struct repro_case {
	const char *title, *json, *model, *gen_kernel, *gen_sandbox;
	int privilege, threads, nsteps;
	const struct expect_step *steps;
};

struct snap {
	unsigned long long ino[NLINKS];
	int err[NLINKS];
	int pid;
	unsigned uid, gid, euid, egid;
	unsigned long long cap_eff;
	unsigned threads;
};

struct record {
	const char *setup_op; /* non-NULL: this setup operation failed with setup_errno */
	int setup_errno;
	struct snap before;
	int steps_done;
	struct { long rc; int err; struct snap after; } step[MAX_STEPS];
	int done;
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

/* ---- /proc helpers ---- */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* "deny" to setgroups, then "0 <uid> 1" and "0 <gid> 1"; returns the failing path or NULL. */
static const char *write_id_maps(unsigned uid, unsigned gid)
{
	char line[64];
	if (write_file("/proc/self/setgroups", "deny") != 0)
		return "write /proc/self/setgroups";
	snprintf(line, sizeof(line), "0 %u 1\n", uid);
	if (write_file("/proc/self/uid_map", line) != 0)
		return "write /proc/self/uid_map";
	snprintf(line, sizeof(line), "0 %u 1\n", gid);
	if (write_file("/proc/self/gid_map", line) != 0)
		return "write /proc/self/gid_map";
	return NULL;
}

static unsigned thread_count(void)
{
	char buf[8192];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strstr(buf, "\nThreads:");
	return p ? (unsigned)strtoul(p + 9, NULL, 10) : 0;
}

static void snapshot(struct snap *s)
{
	char path[64];
	unsigned long long e, p, i;
	for (int k = 0; k < NLINKS; k++) {
		struct stat st;
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
	s->threads = thread_count();
}

/* ---- the case child ---- */
static void *parked(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void setup_fail(struct record *r, const char *op)
{
	r->setup_errno = errno;
	r->setup_op = op;
	_exit(0);
}

static void apply_privilege(struct record *r, int privilege)
{
	unsigned long long e, p, i;
	unsigned uid, gid;
	const char *failed;
	switch (privilege) {
	case PRIV_ROOT:
		break;
	case PRIV_ROOT_WITHOUT_SYS_ADMIN:
		if (cap_get(&e, &p, &i) != 0)
			setup_fail(r, "capget");
		if (cap_set(e & ~CAP_SYS_ADMIN_BIT, p & ~CAP_SYS_ADMIN_BIT, i & ~CAP_SYS_ADMIN_BIT) != 0)
			setup_fail(r, "capset without CAP_SYS_ADMIN");
		break;
	case PRIV_NOBODY:
		if (setgroups(0, NULL) != 0)
			setup_fail(r, "setgroups(0, NULL)");
		if (setresgid(NOBODY, NOBODY, NOBODY) != 0)
			setup_fail(r, "setresgid(65534)");
		if (setresuid(NOBODY, NOBODY, NOBODY) != 0)
			setup_fail(r, "setresuid(65534)");
		/* Without this the /proc/self files turn root-owned (spec 5.4 pitfall). */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
			setup_fail(r, "prctl(PR_SET_DUMPABLE, 1)");
		break;
	case PRIV_USER_NS:
		uid = geteuid();
		gid = getegid();
		if (raw_unshare(U_CLONE_NEWUSER) != 0)
			setup_fail(r, "unshare(NEWUSER) for the user-ns setup");
		failed = write_id_maps(uid, gid);
		if (failed)
			setup_fail(r, failed);
		break;
	}
}

static void run_case(const struct repro_case *c, struct record *r)
{
	if (setpgid(0, 0) != 0)
		setup_fail(r, "setpgid(0, 0)");
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		setup_fail(r, "prctl(PR_SET_PDEATHSIG)");
	apply_privilege(r, c->privilege);
	for (int t = 0; t < c->threads; t++) {
		pthread_t tid;
		int rc = pthread_create(&tid, NULL, parked, NULL);
		if (rc != 0) {
			errno = rc;
			setup_fail(r, "pthread_create");
		}
		pthread_detach(tid);
	}
	snapshot(&r->before);
	for (int k = 0; k < c->nsteps; k++) {
		long rc = raw_unshare(c->steps[k].flags);
		r->step[k].err = rc == 0 ? 0 : errno;
		r->step[k].rc = rc;
		snapshot(&r->step[k].after);
		r->steps_done = k + 1;
	}
	r->done = 1;
	_exit(0);
}

/* ---- comparison ---- */
static int differences;

static void differ(int step, const char *fmt, ...)
{
	va_list ap;
	printf("  MISMATCH (step %d): ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	differences++;
}

static int inode_in(unsigned long long ino, const struct snap *s)
{
	for (int k = 0; k < NLINKS; k++)
		if (s->err[k] == 0 && s->ino[k] == ino)
			return 1;
	return 0;
}

static void show_link(char *buf, size_t len, const struct snap *s, int k)
{
	char eb[16];
	if (s->err[k])
		snprintf(buf, len, "%s", errno_name(s->err[k], eb, sizeof(eb)));
	else
		snprintf(buf, len, "%llu", s->ino[k]);
}

static void compare_unchanged(int step, const struct snap *a, const struct snap *b, const char *why)
{
	char x[32], y[32];
	for (int k = 0; k < NLINKS; k++) {
		if (a->ino[k] != b->ino[k] || a->err[k] != b->err[k]) {
			show_link(x, sizeof(x), a, k);
			show_link(y, sizeof(y), b, k);
			differ(step, "%s, but ns/%s changed %s -> %s", why, LINK_NAMES[k], x, y);
		}
	}
	if (a->uid != b->uid || a->gid != b->gid || a->euid != b->euid || a->egid != b->egid)
		differ(step, "%s, but the ids changed", why);
	if (a->cap_eff != b->cap_eff)
		differ(step, "%s, but CapEff changed %#llx -> %#llx", why, a->cap_eff, b->cap_eff);
	if (a->pid != b->pid || a->threads != b->threads)
		differ(step, "%s, but pid/threads changed %d/%u -> %d/%u", why, a->pid, a->threads, b->pid,
		       b->threads);
}

static void compare_success(int step, const struct expect_step *x, const struct snap *sandbox,
			    const struct snap *initial, const struct snap *before, const struct snap *after)
{
	char eb[16], got[32];
	for (int k = 0; k < NLINKS; k++) {
		int want = x->link[k];
		show_link(got, sizeof(got), after, k);
		if (want == LINK_UNCHANGED) {
			if (before->ino[k] != after->ino[k] || before->err[k] != after->err[k])
				differ(step, "ns/%s should not change, got %s", LINK_NAMES[k], got);
		} else if (want == LINK_FRESH) {
			int dup = 0;
			for (int j = 0; j < k; j++)
				if (x->link[j] == LINK_FRESH && after->err[j] == 0 && after->ino[j] == after->ino[k])
					dup = 1;
			if (after->err[k])
				differ(step, "ns/%s should be a new namespace, reading it gave %s", LINK_NAMES[k], got);
			else if (inode_in(after->ino[k], sandbox) || inode_in(after->ino[k], initial) ||
				 inode_in(after->ino[k], before))
				differ(step, "ns/%s should be a new namespace, but inode %s was alive before",
				       LINK_NAMES[k], got);
			else if (dup)
				differ(step, "ns/%s got inode %s, shared with another new namespace", LINK_NAMES[k], got);
		} else if (after->err[k] != -want) {
			differ(step, "ns/%s should be unreadable with %s, got %s", LINK_NAMES[k],
			       errno_name(-want, eb, sizeof(eb)), got);
		}
	}
	unsigned uid = x->creds_new ? x->uid : before->uid;
	unsigned gid = x->creds_new ? x->gid : before->gid;
	unsigned long long caps = x->creds_new ? x->cap_eff : before->cap_eff;
	if (after->uid != uid || after->euid != uid || after->gid != gid || after->egid != gid ||
	    after->cap_eff != caps)
		differ(step, "credentials: expected uid/gid %u/%u CapEff %#llx, got uid %u gid %u euid %u egid %u CapEff %#llx",
		       uid, gid, caps, after->uid, after->gid, after->euid, after->egid, after->cap_eff);
	if (after->pid != before->pid || after->threads != before->threads)
		differ(step, "pid/threads changed %d/%u -> %d/%u", before->pid, before->threads, after->pid,
		       after->threads);
}

static int judge(const struct repro_case *c, const struct record *r, const struct snap *sandbox)
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
		printf("step %d: unshare(", k);
		print_flags(x->flags);
		printf(")\n  expected: %s (rule %s, effective flags %#llx)\n", want_s, x->rule, x->effective);
		printf("step %d: observed %s\n", k, got_s);
		if (got != x->expect_errno)
			differ(k, "the model expected %s, the kernel returned %s", want_s, got_s);
		if (got != 0)
			compare_unchanged(k, before, after, "the call failed");
		else if (x->expect_errno == 0)
			compare_success(k, x, sandbox, &r->before, before, after);
	}
	if (r->steps_done != c->nsteps || !r->done) {
		printf("  MISMATCH: the case's process ended after %d of %d steps\n", r->steps_done, c->nsteps);
		differences++;
	}
	if (differences) {
		printf("RESULT: MISMATCH, %d difference(s) between the kernel and the model\n", differences);
		return 1;
	}
	printf("RESULT: the kernel agrees with the model\n");
	return 0;
}

/* ---- pid 1 of the sandbox: fork the case under a watchdog, then judge ---- */
static pid_t case_pid;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	kill(-case_pid, SIGKILL);
	kill(case_pid, SIGKILL);
}

static int sandbox_pid1(const struct repro_case *c)
{
	struct snap sandbox;
	int status = 0;
	struct record *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) {
		perror("repro: mmap");
		return 2;
	}
	memset(r, 0, sizeof(*r));
	snapshot(&sandbox);
	fflush(stdout);
	case_pid = fork();
	if (case_pid < 0) {
		perror("repro: fork of the case child");
		return 2;
	}
	if (case_pid == 0)
		run_case(c, r);
	setpgid(case_pid, case_pid);
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_SECONDS);
	while (waitpid(case_pid, &status, 0) < 0 && errno == EINTR)
		;
	alarm(0);
	kill(-case_pid, SIGKILL); /* whatever the case left behind */
	if (timed_out) {
		printf("MISMATCH: timeout: the case was still running after %d s\n", WATCHDOG_SECONDS);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		printf("MISMATCH: crash: the case's process died by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return judge(c, r, &sandbox);
}

static int enter_sandbox_and_run(const struct repro_case *c)
{
	unsigned long long e = 0, p, i;
	unsigned uid = getuid(), gid = getgid();
	int userns = cap_get(&e, &p, &i) != 0 || !(e & CAP_SYS_ADMIN_BIT);
	unsigned long long flags = U_CLONE_NEWNS | U_CLONE_NEWUTS | U_CLONE_NEWIPC | U_CLONE_NEWNET | U_CLONE_NEWPID;
	int status;
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
		printf("BROKEN: cannot make / private in the sandbox: %s\n", strerror(errno));
		return 2;
	}
	sethostname("unshare-fuzz-sandbox", 20);
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
