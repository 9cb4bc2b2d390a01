/* ---- namespace identity by behaviour (src/repro/markers.c; exec/child/markers.rs, check/behaviour.rs)
 *
 * The sandbox's pid 1 makes one marker per namespace type that lives in exactly one namespace
 * of that type: an abstract unix socket (network namespace) and a SysV shared memory segment
 * (IPC namespace). The case reads them before its first step and after its last, with the
 * mount id of / (new in a copied mount namespace), so it tells whether it is still in the
 * namespaces it started in without trusting /proc/self/ns links. The UTS namespace shows
 * nothing without a write: after its last step the case sets its hostname to UTS_MARKER, and
 * pid 1 reads its own hostname after the case and puts its name back.
 */
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>

#define UTS_MARKER "unshare-fuzz-uts-marker"

static struct {
	char name[64]; /* the abstract socket's name (without the leading NUL), "" for none */
	int shm_id;    /* the segment, or -1 for none */
	int uts;       /* the case writes the UTS marker */
	char host[65]; /* pid 1's hostname, put back after the case */
} M = { .shm_id = -1 };

static int abstract_socket(struct sockaddr_un *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path + 1, M.name, strlen(M.name));
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(M.name));
	return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* pid 1, before the case: the markers, each one left out (and said) when it cannot be made. */
static void make_markers(void)
{
	struct sockaddr_un a;
	socklen_t len;
	snprintf(M.name, sizeof(M.name), "unshare-fuzz-repro-marker-%d-%ld", (int)getpid(), (long)time(NULL));
	int fd = abstract_socket(&a, &len);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, 64) != 0) {
		printf("off: the network-namespace marker (abstract unix socket: %s)\n", strerror(errno));
		M.name[0] = 0;
	}
	M.shm_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	/* Attached and marked for removal: it lives while pid 1 (or a case) keeps it attached. */
	if (M.shm_id < 0 || shmat(M.shm_id, NULL, SHM_RDONLY) == (void *)-1) {
		printf("off: the IPC-namespace marker (SysV shared memory: %s)\n", strerror(errno));
		M.shm_id = -1;
	} else {
		shmctl(M.shm_id, IPC_RMID, NULL);
	}
	M.uts = gethostname(M.host, sizeof(M.host) - 1) == 0 && strcmp(M.host, UTS_MARKER) != 0;
	if (!M.uts)
		printf("off: the UTS-namespace marker (gethostname: %s)\n", strerror(errno));
}

/* The mount id of the mount / is on: statx's stx_mnt_id, else the first field of
 * /proc/self/mountinfo (the root mount of the caller's view). */
static void root_mount_id(struct marks *m)
{
	unsigned char stx[256];
	char buf[32];
	unsigned mask;
	memset(stx, 0, sizeof(stx));
	if (syscall(SYS_statx, AT_FDCWD, "/", 0, 0x1000U /* STATX_MNT_ID */, stx) == 0) {
		memcpy(&mask, stx, sizeof(mask));
		if (mask & 0x1000U) {
			memcpy(&m->mnt, stx + 144 /* stx_mnt_id */, sizeof(m->mnt));
			m->mnt_err = 0;
			return;
		}
	}
	if (read_file("/proc/self/mountinfo", buf, sizeof(buf)) < 0) {
		m->mnt_err = errno;
		return;
	}
	char *end;
	m->mnt = strtoull(buf, &end, 10);
	m->mnt_err = end == buf ? ENODATA : 0;
}

/* The case: the markers as the caller's current namespaces show them. */
static void read_marks(struct marks *m)
{
	struct sockaddr_un a;
	socklen_t len;
	struct shmid_ds ds;
	m->net = m->ipc = NONE;
	if (M.name[0]) {
		int fd = abstract_socket(&a, &len);
		if (fd < 0)
			m->net = -errno;
		else if (connect(fd, (struct sockaddr *)&a, len) == 0 || errno == EAGAIN)
			m->net = 1;
		else
			m->net = errno == ECONNREFUSED ? 0 : -errno; /* nothing of that name here */
		if (fd >= 0)
			close(fd);
	}
	if (M.shm_id >= 0) {
		/* EACCES: it exists, but a new user namespace may not read it; EINVAL: not here. */
		if (shmctl(M.shm_id, IPC_STAT, &ds) == 0 || errno == EACCES)
			m->ipc = 1;
		else
			m->ipc = errno == EINVAL ? 0 : -errno;
	}
	root_mount_id(m);
}

/* The case, last: sets the hostname to the marker (1), or -errno; NONE without the marker. */
static void write_uts(struct record *r)
{
	r->uts_set = !M.uts ? NONE : sethostname(UTS_MARKER, strlen(UTS_MARKER)) == 0 ? 1 : -errno;
}

/* pid 1, after the case: the marker is its hostname now (1) or not (0), -errno; its own name
 * is put back. */
static int read_uts(void)
{
	char now[65] = "";
	if (!M.uts)
		return NONE;
	if (gethostname(now, sizeof(now) - 1) != 0)
		return -errno;
	if (strcmp(now, M.host) != 0 && sethostname(M.host, strlen(M.host)) != 0)
		return -errno;
	return strcmp(now, UTS_MARKER) == 0;
}

/* ---- namespaces-by-behaviour: kept 1, the caller keeps the namespace it started in ---- */

static void marker_is(const char *what, const char *marker, int before, int after, int kept)
{
	char b[32], a[32];
	if (before < 0 || before > 1 || after < 0 || after > 1) {
		show_value(b, sizeof(b), before);
		show_value(a, sizeof(a), after);
		printf("  note: the %s is not judged by behaviour (%s: before %s, after %s)\n", what, marker, b, a);
		return;
	}
	/* Out of reach before the steps, it stays out of reach: a new namespace holds none either. */
	if (after != (before && kept))
		differ(-1, before && kept ? "%s was reachable before the steps and no longer is: the caller left its %s, "
					    "which the model keeps"
					  : "%s is still reachable after the steps: the caller is still in its old %s, "
					    "where the model has a new one",
		       marker, what);
}

static void net_kept(const struct record *r, int kept)
{
	marker_is("network namespace", "the abstract unix socket", r->mark[0].net, r->mark[1].net, kept);
}

static void ipc_kept(const struct record *r, int kept)
{
	marker_is("IPC namespace", "the SysV shared memory segment", r->mark[0].ipc, r->mark[1].ipc, kept);
}

static void mnt_kept(const struct record *r, int kept)
{
	const struct marks *b = &r->mark[0], *a = &r->mark[1];
	if (b->mnt_err || a->mnt_err)
		printf("  note: the mount namespace is not judged by behaviour (mount id of /: %s)\n",
		       strerror(b->mnt_err ? b->mnt_err : a->mnt_err));
	else if ((b->mnt == a->mnt) != kept)
		differ(-1, kept ? "the mount id of / changed, though the model keeps the mount namespace"
				: "the mount id of / is the one it had before the steps: the mount tree was not copied, "
				  "though the model has a new mount namespace");
}

static void uts_kept(const struct record *r, int kept)
{
	char s[32], v[32];
	if (r->uts_set != 1 || r->uts_seen < 0 || r->uts_seen > 1) {
		show_value(s, sizeof(s), r->uts_set);
		show_value(v, sizeof(v), r->uts_seen);
		printf("  note: the UTS namespace is not judged by behaviour (marker set: %s, seen: %s)\n", s, v);
	} else if (r->uts_seen != kept) {
		differ(-1, kept ? "the hostname the caller set after the steps did not reach the executor: the caller left "
				  "the executor's UTS namespace, which the model keeps"
				: "the hostname the caller set after the steps became the executor's too: the caller is "
				  "still in the executor's UTS namespace, where the model has a new one");
	}
}
/* ---- end of markers.c ---- */
