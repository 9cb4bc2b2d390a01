/* ---- life inside the namespaces (src/repro/inside.c; exec/child/inside.rs, check/inside.rs)
 *
 * pid 1 of the sandbox makes a POSIX message queue (it lives in the sandbox's IPC namespace) and
 * brings the sandbox's loopback up.
 * The case reads, before its first step and after its last: whether that queue exists, the
 * network devices of its network namespace (interface indexes 1 to 32: how many, how many up,
 * the loopback's state) and /proc/thread-self/cgroup (every line "/", and a hash to compare).
 */
#include <net/if.h>
#include <sys/ioctl.h>

static char MQ[64]; /* the queue's name without the leading '/', "" for none */

/* pid 1, before the case. */
static void make_inside_markers(void)
{
	struct { long flags, maxmsg, msgsize, curmsgs, pad[4]; } attr = { 0, 1, 1, 0, { 0 } };
	snprintf(MQ, sizeof(MQ), "unshare-fuzz-repro-mq-%d-%ld", (int)getpid(), (long)time(NULL));
	long fd = syscall(SYS_mq_open, MQ, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0600, &attr);
	if (fd < 0) {
		printf("off: the POSIX message queue marker (mq_open: %s)\n", strerror(errno));
		MQ[0] = 0;
	} else {
		close((int)fd);
	}
	/* The sandbox's loopback up: a kept network namespace then shows one device up, a new one none. */
	struct ifreq q;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&q, 0, sizeof(q));
	strcpy(q.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &q) != 0 || (q.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &q) != 0))
		printf("note: the sandbox's loopback stays down (%s)\n", strerror(errno));
	if (s >= 0)
		close(s);
}

static void read_inside(struct marks *m)
{
	char buf[2048];
	m->mq = NONE;
	if (MQ[0]) {
		long fd = syscall(SYS_mq_open, MQ, O_RDONLY | O_CLOEXEC, 0, NULL);
		/* EACCES: it exists, for credentials that may not open it; ENOENT: not here. */
		m->mq = fd >= 0 || errno == EACCES ? 1 : errno == ENOENT ? 0 : -errno;
		if (fd >= 0)
			close((int)fd);
	}
	m->devs = m->up = 0;
	m->lo = 2;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		m->devs = m->up = m->lo = -errno;
	for (int i = 1; s >= 0 && i <= 32; i++) {
		struct ifreq q;
		memset(&q, 0, sizeof(q));
		q.ifr_ifindex = i;
		if (ioctl(s, SIOCGIFNAME, &q) != 0) {
			if (errno == ENODEV)
				continue;
			m->devs = m->up = m->lo = -errno;
			break;
		}
		if (ioctl(s, SIOCGIFFLAGS, &q) != 0) {
			m->devs = m->up = m->lo = -errno;
			break;
		}
		m->devs++;
		m->up += (q.ifr_flags & IFF_UP) != 0;
		if (q.ifr_flags & IFF_LOOPBACK)
			m->lo = (q.ifr_flags & IFF_UP) == 0;
	}
	if (s >= 0)
		close(s);
	ssize_t n = read_file("/proc/thread-self/cgroup", buf, sizeof(buf));
	m->cg_err = n < 0 ? errno : n == 0 ? ENODATA : n == (ssize_t)sizeof(buf) - 1 ? ENOBUFS : 0;
	if (m->cg_err)
		return;
	m->cg_hash = 0xcbf29ce484222325ULL;
	for (ssize_t k = 0; k < n; k++)
		m->cg_hash = (m->cg_hash ^ (unsigned char)buf[k]) * 0x100000001b3ULL;
	m->cg_root = 1;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *second = strchr(line, ':');
		second = second ? strchr(second + 1, ':') : NULL;
		if (!second || strcmp(second + 1, "/") != 0)
			m->cg_root = 0;
	}
}

/* ---- life-inside-namespaces: kept 1, the caller keeps the namespace it started in ---- */

static void mq_kept(const struct record *r, int kept)
{
	int before = r->mark[0].mq, after = r->mark[1].mq;
	char b[32], a[32];
	if (before < 0 || before > 1 || after < 0 || after > 1) {
		show_value(b, sizeof(b), before);
		show_value(a, sizeof(a), after);
		printf("  note: the POSIX message queue is not judged (before %s, after %s)\n", b, a);
	} else if (after != (before && kept)) {
		differ(-1, after ? "the POSIX message queue is still visible after the steps: the caller still sees the "
				   "old IPC namespace's queues, where the model has a new IPC namespace"
				 : "the POSIX message queue was visible before the steps and no longer is: the caller "
				   "left its IPC namespace, which the model keeps");
	}
}

/* fresh 0: the same devices, as many up; fresh 1: a new network namespace, as many devices as
 * the sandbox's, none up, a loopback that is down. */
static void devices_are(const struct record *r, int fresh)
{
	const struct marks *b = &r->mark[0], *a = &r->mark[1];
	if (b->devs < 0 || a->devs < 0 || b->up < 0 || a->up < 0) {
		printf("  note: the network devices are not judged (unread: %s)\n",
		       strerror(-(b->devs < 0 ? b->devs : a->devs < 0 ? a->devs : b->up < 0 ? b->up : a->up)));
	} else if (!fresh && (a->devs != b->devs || a->up != b->up)) {
		differ(-1, "the caller keeps its network namespace, but it saw %d devices (%d up) before the steps "
			   "and %d (%d up) after", b->devs, b->up, a->devs, a->up);
	} else if (fresh && (a->devs != b->devs || a->up != 0 || a->lo != 1)) {
		differ(-1, "a new network namespace should hold as many devices as the sandbox's (%d), none up, and a "
			   "loopback that is down; it holds %d (%d up), loopback %s", b->devs, a->devs, a->up,
		       a->lo == 1 ? "down" : a->lo == 0 ? "up" : "missing");
	}
}

static void cgroup_kept(const struct record *r, int kept)
{
	const struct marks *b = &r->mark[0], *a = &r->mark[1];
	if (a->cg_err || (kept && b->cg_err))
		printf("  note: the cgroup is not judged (/proc/thread-self/cgroup: %s)\n",
		       strerror(a->cg_err ? a->cg_err : b->cg_err));
	else if (kept && a->cg_hash != b->cg_hash)
		differ(-1, "/proc/thread-self/cgroup changed across the steps, though the model keeps the caller's "
			   "cgroup namespace");
	else if (!kept && !a->cg_root)
		differ(-1, "/proc/thread-self/cgroup does not name the root \"/\" after the steps: the caller is not "
			   "at the root of a new cgroup namespace, which the model has");
}
/* ---- end of inside.c ---- */
