/* The checker floor of one fuzz case: what the harness's case child must do at the least to
 * check a single unshare, in C, with nothing of the harness around it. Per flag word: fork;
 * the child observes its state (the same system calls as `snapshot` in src/exec/child.rs),
 * calls unshare(word), observes again and _exits; the parent waits. No setup, no records, no
 * pipe, no IPC with a harness, no judging. `unshare-fuzz bench` runs it beside the harness
 * and the bare fork + unshare + wait loop (harness/floor: what the harness costs beyond the
 * checks themselves).
 *
 * One observation, as the case child makes it:
 *   namespaces, --ns pidfd: pidfd_open(getpid()), then per namespace (10) ioctl
 *     PIDFD_GET_<NS>_NAMESPACE, fstat and close, and close the pidfd (Linux 6.11+; the parent
 *     holds its own ten namespaces open, as the executor does);
 *   namespaces, --ns links: open /proc/self/ns, readlinkat of each of the 10 links, close;
 *   the rest: getpid; getuid, getgid, geteuid, getegid; capget; open /proc/self/task,
 *     getdents64 until the end, close (thread count); umask twice; stat(".").
 * And the namespace markers, as the case child reads them (src/exec/markers.rs) before its
 * first observation and after its last: a non-blocking connect to the parent's abstract unix
 * socket from a new socket, closed again (network namespace); shmctl IPC_STAT of the parent's
 * SysV segment (IPC namespace); statx of / for its mount id (mount namespace); after the last
 * reading, sethostname to a marker (UTS namespace). After the wait the parent, as the
 * executor, reads its hostname, puts its own back when it changed, and accepts and closes the
 * pending connections. The UTS marker is written only with --sandbox (a UTS namespace of the
 * floor's own; never the host's hostname).
 * And life inside the namespaces (src/exec/child/inside.rs), read before and after only for
 * a word with that namespace's bit, as the case child does: for NEWIPC, mq_open of the
 * parent's POSIX message queue; for NEWNET, interface indexes 1 to 32 by SIOCGIFNAME and
 * SIOCGIFFLAGS on an AF_UNIX socket; for NEWCGROUP, a read of /proc/thread-self/cgroup.
 *
 * Usage: checker-floor [--cpu N] [--ns pidfd|links] [--sandbox] < words
 * Reads hex flag words from stdin, one per line, runs each once in order, prints
 * "floor: N cases in NANOS ns" on stdout. --cpu pins the process (and so its children) to CPU
 * N. --sandbox first enters fresh mount, UTS, IPC, net and pid namespaces (and, when not run
 * as root, a user namespace mapping root to the caller, as the executor's sandbox) and runs
 * the loop as their pid 1, as the executor does; it is said on stderr when that fails.
 *
 * Build: cc -O2 -o checker-floor scripts/bench/checker-floor.c
 * unshare is called as syscall(SYS_unshare, (unsigned long)flags), never glibc's int unshare().
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORDS 1000000
#define NS 10

static const char *ns_names[NS] = { "cgroup", "ipc", "mnt", "net", "pid",
				    "pid_for_children", "time", "time_for_children", "user", "uts" };

/* What the child keeps of an observation (the case child writes it to a record). */
struct snap {
	unsigned long long ns[NS];
	int ns_err[NS];
	pid_t pid;
	unsigned ids[4];
	unsigned cap_eff[2];
	int threads;
	unsigned umask;
	unsigned long long cwd[2];
};

static int use_pidfd = 1;

/* The markers (made by the parent before the loop; see src/exec/markers.rs). */
static struct sockaddr_un marker_addr;
static socklen_t marker_len;
static int marker_listener = -1, marker_shm = -1, marker_uts;
static char own_hostname[65];
static const char uts_marker[] = "unshare-fuzz-uts-marker";

/* What the child keeps of a marker reading (the case child sends it in its probe record). */
struct marks {
	int net, ipc;
	unsigned long long mnt;
};

/* The POSIX message queue marker (life inside the IPC namespace). */
static char mq_name[64];
static int have_mq;

/* One reading of life inside the namespaces the word asks to leave. */
struct inside {
	int mq, devs, up;
	unsigned long cgroup_hash;
};

static void make_inside(void)
{
	snprintf(mq_name, sizeof(mq_name), "unshare-fuzz-floor-%d", (int)getpid());
	int q = syscall(SYS_mq_open, mq_name, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0600, NULL);
	have_mq = q >= 0;
	if (q >= 0)
		close(q);
}

static void read_inside(unsigned long long word, struct inside *in)
{
	if ((word & CLONE_NEWIPC) && have_mq) {
		int q = syscall(SYS_mq_open, mq_name, O_RDONLY | O_CLOEXEC, 0, NULL);
		in->mq = q >= 0;
		if (q >= 0)
			close(q);
	}
	if (word & CLONE_NEWNET) {
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		in->devs = in->up = 0;
		for (int i = 1; fd >= 0 && i <= 32; i++) {
			struct ifreq r;
			memset(&r, 0, sizeof(r));
			r.ifr_ifindex = i;
			if (ioctl(fd, SIOCGIFNAME, &r) != 0)
				continue;
			if (ioctl(fd, SIOCGIFFLAGS, &r) == 0) {
				in->devs++;
				in->up += (r.ifr_flags & IFF_UP) != 0;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	if (word & CLONE_NEWCGROUP) {
		char buf[2048];
		int fd = open("/proc/thread-self/cgroup", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
		unsigned long h = 0xcbf29ce484222325ul;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ul;
		in->cgroup_hash = h;
		if (fd >= 0)
			close(fd);
	}
}

static void make_markers(int sandboxed)
{
	marker_addr.sun_family = AF_UNIX;
	int n = snprintf(marker_addr.sun_path + 1, sizeof(marker_addr.sun_path) - 1,
			 "unshare-fuzz-floor-marker-%llx", (unsigned long long)getppid() ^ (unsigned long long)time(NULL));
	marker_len = sizeof(sa_family_t) + 1 + n;
	marker_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (marker_listener >= 0 && (bind(marker_listener, (struct sockaddr *)&marker_addr, marker_len) != 0 ||
				     listen(marker_listener, 64) != 0)) {
		perror("checker-floor: no network-namespace marker");
		close(marker_listener);
		marker_listener = -1;
	}
	marker_shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (marker_shm >= 0) {
		shmat(marker_shm, NULL, SHM_RDONLY);
		shmctl(marker_shm, IPC_RMID, NULL);
	}
	marker_uts = sandboxed && gethostname(own_hostname, sizeof(own_hostname) - 1) == 0;
}

static void read_markers(struct marks *m)
{
	m->net = -1;
	if (marker_listener >= 0) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0) {
			m->net = connect(fd, (struct sockaddr *)&marker_addr, marker_len);
			close(fd);
		}
	}
	struct shmid_ds ds;
	m->ipc = marker_shm < 0 ? -1 : shmctl(marker_shm, IPC_STAT, &ds);
	struct statx stx;
	m->mnt = statx(AT_FDCWD, "/", 0, STATX_MNT_ID, &stx) == 0 ? stx.stx_mnt_id : 0;
}

/* The executor's side after a case: the hostname read (and put back), the connections drained. */
static void after_case(void)
{
	if (marker_uts) {
		char now[65] = { 0 };
		if (gethostname(now, sizeof(now) - 1) == 0 && strcmp(now, own_hostname) != 0)
			sethostname(own_hostname, strlen(own_hostname));
	}
	if (marker_listener >= 0)
		while (1) {
			int c = accept4(marker_listener, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				break;
			close(c);
		}
}

static unsigned long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (unsigned long long)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static unsigned long long link_inode(const char *text, ssize_t n)
{
	unsigned long long v = 0;
	ssize_t i = 0;
	while (i < n && text[i] != '[')
		i++;
	for (i++; i < n && text[i] >= '0' && text[i] <= '9'; i++)
		v = v * 10 + (text[i] - '0');
	return v;
}

static void namespaces(struct snap *s)
{
	if (use_pidfd) {
		int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
		for (int i = 0; i < NS; i++) {
			int fd = pidfd < 0 ? -1 : ioctl(pidfd, (0xFF << 8) | (i + 1), 0);
			struct stat st;
			if (fd >= 0 && fstat(fd, &st) == 0) {
				s->ns[i] = st.st_ino;
				s->ns_err[i] = 0;
			} else {
				s->ns_err[i] = 1;
			}
			if (fd >= 0)
				close(fd);
		}
		if (pidfd >= 0)
			close(pidfd);
	} else {
		int dir = open("/proc/self/ns", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		for (int i = 0; i < NS; i++) {
			char buf[64];
			ssize_t n = dir < 0 ? -1 : readlinkat(dir, ns_names[i], buf, sizeof(buf));
			s->ns[i] = n > 0 ? link_inode(buf, n) : 0;
			s->ns_err[i] = n <= 0;
		}
		if (dir >= 0)
			close(dir);
	}
}

static int count_tasks(void)
{
	char buf[512];
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC), count = 0;
	long n;
	if (fd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off + 19 < n;) {
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, 2);
			const char *name = buf + off + 19;
			if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))))
				count++;
			if (reclen == 0)
				break;
			off += reclen;
		}
	}
	close(fd);
	return count;
}

static void snapshot(struct snap *s)
{
	namespaces(s);
	s->pid = getpid();
	s->ids[0] = getuid();
	s->ids[1] = getgid();
	s->ids[2] = geteuid();
	s->ids[3] = getegid();
	struct { unsigned version; int pid; } header = { 0x20080522, 0 };
	struct { unsigned effective, permitted, inheritable; } data[2];
	if (syscall(SYS_capget, &header, data) == 0) {
		s->cap_eff[0] = data[0].effective;
		s->cap_eff[1] = data[1].effective;
	}
	s->threads = count_tasks();
	s->umask = umask(0);
	umask(s->umask);
	struct stat st;
	if (stat(".", &st) == 0) {
		s->cwd[0] = st.st_dev;
		s->cwd[1] = st.st_ino;
	}
}

static unsigned long long words[MAX_WORDS];

static int run_loop(int n, int sandboxed)
{
	make_markers(sandboxed);
	if (sandboxed)
		make_inside(); /* never a queue in the host's IPC namespace */
	/* As the executor: hold our own namespaces open, so nsfs keeps their dentries. */
	if (use_pidfd)
		for (int i = 0; i < NS; i++) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
			open(path, O_RDONLY | O_CLOEXEC);
		}
	unsigned long long start = now_ns();
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("checker-floor: fork");
			return 2;
		}
		if (pid == 0) {
			static struct snap before, after;
			static struct marks marks_before, marks_after;
			static struct inside inside_before, inside_after;
			read_markers(&marks_before);
			read_inside(words[i], &inside_before);
			snapshot(&before);
			syscall(SYS_unshare, (unsigned long)words[i]);
			snapshot(&after);
			read_markers(&marks_after);
			read_inside(words[i], &inside_after);
			if (marker_uts)
				sethostname(uts_marker, sizeof(uts_marker) - 1);
			/* Keep the observations alive (the case child sends them). */
			__asm__ volatile("" : : "r"(&before), "r"(&after), "r"(&marks_before), "r"(&marks_after),
					 "r"(&inside_before), "r"(&inside_after)
					 : "memory");
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid) {
			perror("checker-floor: waitpid");
			return 2;
		}
		after_case();
	}
	unsigned long long took = now_ns() - start;
	if (have_mq)
		syscall(SYS_mq_unlink, mq_name);
	printf("floor: %d cases in %llu ns\n", n, took);
	fflush(stdout);
	return 0;
}

/* Writes `text` to `path`; 0 on success. */
static int put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = (ssize_t)strlen(text);
	int ok = write(fd, text, len) == len;
	close(fd);
	return ok ? 0 : -1;
}

/* In a fresh user namespace: root inside is `uid`/`gid` outside (setgroups denied first). */
static int map_root(uid_t uid, gid_t gid)
{
	char line[64];
	if (put("/proc/self/setgroups", "deny") != 0)
		return -1;
	snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)uid);
	if (put("/proc/self/uid_map", line) != 0)
		return -1;
	snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)gid);
	return put("/proc/self/gid_map", line);
}

int main(int argc, char **argv)
{
	int cpu = -1, sandbox = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
			cpu = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--ns") && i + 1 < argc) {
			use_pidfd = !strcmp(argv[++i], "pidfd");
		} else if (!strcmp(argv[i], "--sandbox")) {
			sandbox = 1;
		} else {
			fprintf(stderr, "usage: checker-floor [--cpu N] [--ns pidfd|links] [--sandbox] < words\n");
			return 2;
		}
	}
	char line[256];
	int n = 0;
	while (n < MAX_WORDS && fgets(line, sizeof(line), stdin)) {
		char *end;
		unsigned long long w = strtoull(line, &end, 0);
		if (end != line)
			words[n++] = w;
	}
	if (n == 0) {
		fprintf(stderr, "checker-floor: no flag words on stdin (one hex word per line)\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			perror("checker-floor: sched_setaffinity (running unpinned)");
	}
	if (!sandbox)
		return run_loop(n, 0);
	/* Not root: a user namespace of its own first, with root mapped to the caller, as the
	 * executor's sandbox has (otherwise every NEWNS word would just fail with EPERM). */
	uid_t uid = getuid();
	gid_t gid = getgid();
	unsigned long ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID;
	if (geteuid() != 0)
		ns_flags |= CLONE_NEWUSER;
	if (syscall(SYS_unshare, ns_flags) != 0 || ((ns_flags & CLONE_NEWUSER) && map_root(uid, gid) != 0) ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		perror("checker-floor: cannot enter a sandbox (running without)");
		return run_loop(n, 0);
	}
	pid_t init = fork();
	if (init < 0) {
		perror("checker-floor: fork");
		return 2;
	}
	if (init == 0) {
		/* pid 1 of the new pid namespace, with its own /proc, as the executor. */
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			perror("checker-floor: mount /proc (the host's stays)");
		fflush(stdout);
		_exit(run_loop(n, 1));
	}
	int status;
	if (waitpid(init, &status, 0) != init || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}
