/* ---- the inside witness (src/repro/witness.c; exec/child/inside_witness.rs) --------------
 *
 * With the setup field inside_witness the case child forks a witness before the first step;
 * it stays in the namespaces the setup left and answers one-byte commands on a pipe. After
 * the last step the caller sets a hostname (read back), the witness reads it; the witness sets
 * another (read back), the caller reads it; the caller mounts a tmpfs on WIT_MNT_DIR and asks
 * whether the witness sees it; both read their setgroups; the caller writes timens offsets,
 * compares its clock with the witness's and forks a child that reads both clocks; with
 * shared_mount the caller and the witness each mount on a directory of the setup's shared
 * tmpfs and look for the other's (propagation). The
 * readings go to a shared page mapped at start (before any fork); wit_judge() compares them
 * with the model's predictions as check/inside_witness.rs does. The WIT_* constants are
 * generated from case::inside.
 */
#define WIT_SEEN 9
#define WIT_TIME 5
#define WIT_SHARED 4
struct wit_record { int seen[WIT_SEEN]; int time[WIT_TIME]; int shared[WIT_SHARED]; };
static struct wit_record *wit_rec;
static struct { int cmd, ans, forked; } wit = { -1, -1, NONE };
/* A witness_idmap command: this bit with the operation's position in IdmapOp::ALL. */
#define WIT_WRITE_IDMAP 0x80

__attribute__((constructor)) static void wit_map(void)
{
	wit_rec = mmap(NULL, sizeof(*wit_rec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (wit_rec == MAP_FAILED) {
		wit_rec = NULL;
		return;
	}
	for (int i = 0; i < WIT_SEEN; i++)
		wit_rec->seen[i] = NONE;
	for (int i = 0; i < WIT_TIME; i++)
		wit_rec->time[i] = NONE;
	for (int i = 0; i < WIT_SHARED; i++)
		wit_rec->shared[i] = NONE;
}

static long long wit_hostname_is(const char *name)
{
	char buf[72];
	if (gethostname(buf, sizeof(buf)) != 0)
		return -errno;
	return strcmp(buf, name) == 0;
}

static long long wit_mounted(void)
{
	struct stat a, b;
	if (stat(WIT_MNT_DIR, &a) != 0 || stat(WIT_MNT_PARENT, &b) != 0)
		return -errno;
	return a.st_dev != b.st_dev;
}

/* A mount on dir, a directory of the setup's shared tmpfs (setup field shared_mount). */
static long long wit_shared_mounted(const char *dir)
{
	struct stat a, b;
	if (stat(dir, &a) != 0 || stat(WIT_SHARED_DIR, &b) != 0)
		return -errno;
	return a.st_dev != b.st_dev;
}

static long long wit_mount_shared(const char *dir)
{
	if (mount("uf-shared-sub", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		return -errno;
	return wit_shared_mounted(dir);
}

static long long wit_setgroups_deny(void)
{
	char buf[16] = "";
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	return !strncmp(buf, "deny", 4) ? 1 : !strncmp(buf, "allow", 5) ? 0 : -EIO;
}

static long long wit_clock(clockid_t id)
{
	struct timespec t;
	if (clock_gettime(id, &t) != 0)
		return -errno;
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int wit_slot(long long v)
{
	return v < INT_MIN || v > INT_MAX ? -ERANGE : (int)v;
}

/* The witness: one eight-byte answer per command, until the pipe closes. */
static void wit_serve(int cmd, int ans, int proc_dir)
{
	unsigned char c;
	while (read(cmd, &c, 1) == 1) {
		long long v = -EINVAL;
		if (c & WIT_WRITE_IDMAP)
			v = wit_idmap(proc_dir, c & ~WIT_WRITE_IDMAP);
		else if (c == 'h')
			v = wit_hostname_is(WIT_CALLER_HOST);
		else if (c == 'H')
			v = sethostname(WIT_WITNESS_HOST, strlen(WIT_WITNESS_HOST)) ? -errno : wit_hostname_is(WIT_WITNESS_HOST);
		else if (c == 'm')
			v = wit_mounted();
		else if (c == 'g')
			v = wit_setgroups_deny();
		else if (c == 't')
			v = wit_clock(CLOCK_MONOTONIC);
		else if (c == 'a')
			v = wit_shared_mounted(WIT_SHARED_CALLER);
		else if (c == 'B')
			v = wit_mount_shared(WIT_SHARED_WITNESS);
		if (write(ans, &v, sizeof(v)) != sizeof(v))
			break;
	}
	_exit(0);
}

/* Before the first step: the directory for the tmpfs (in the sandbox's private /tmp), then the
 * witness; with proc_dir (a witness_idmap step) the caller's /proc/self, which only the witness keeps. */
static void witness_start(int proc_dir)
{
	int c[2], a[2], dir = -EBADF;
	/* A failure leaves the directory unreadable below: the mount is then not judged, as in the harness. */
	(void)mkdir(WIT_MNT_DIR, 0755);
	if (pipe2(c, O_CLOEXEC) != 0 || pipe2(a, O_CLOEXEC) != 0) {
		wit.forked = -errno;
		return;
	}
	if (proc_dir && (dir = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		dir = -errno;
	pid_t pid = fork();
	if (pid == 0) {
		close(c[1]);
		close(a[0]);
		wit_serve(c[0], a[1], dir);
	}
	if (dir >= 0)
		close(dir);
	close(c[0]);
	close(a[1]);
	if (pid < 0) {
		wit.forked = -errno;
		close(c[1]);
		close(a[0]);
		return;
	}
	wit.cmd = c[1];
	wit.ans = a[0];
	wit.forked = 1;
}

static long long wit_ask(char what)
{
	long long v;
	size_t got = 0;
	if (write(wit.cmd, &what, 1) != 1)
		return -errno;
	while (got < sizeof(v)) {
		ssize_t n = read(wit.ans, (char *)&v + got, sizeof(v) - got);
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		got += (size_t)n;
	}
	return v;
}

/* A witness_idmap step: the witness writes the caller's map. Without a witness: the errno of
 * its fork, or ECHILD when none was asked for. Returns 0 or the errno. */
static int step_witness_idmap(int op)
{
	if (wit.forked != 1)
		return wit.forked < 0 && wit.forked != NONE ? -wit.forked : ECHILD;
	long long v = wit_ask((char)(WIT_WRITE_IDMAP | op));
	return v == 0 ? 0 : v < 0 && v >= -4095 ? (int)-v : ERANGE;
}

/* After the last step: hostnames, the tmpfs, setgroups (the OP_SEEN slots of the harness). */
static void witness_seen(void)
{
	if (!wit_rec)
		return;
	int *p = wit_rec->seen;
	p[8] = wit.forked;
	if (wit.forked != 1)
		return;
	p[0] = sethostname(WIT_CALLER_HOST, strlen(WIT_CALLER_HOST)) ? -errno : wit_slot(wit_hostname_is(WIT_CALLER_HOST));
	if (p[0] == 1)
		p[1] = wit_slot(wit_ask('h'));
	p[2] = wit_slot(wit_ask('H'));
	if (p[2] == 1)
		p[3] = wit_slot(wit_hostname_is(WIT_WITNESS_HOST));
	long long before = wit_ask('m');
	if (before != 0) {
		p[5] = before == 1 ? -EBUSY : wit_slot(before);
	} else if (mount("uf-inside", WIT_MNT_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
		p[4] = wit_slot(wit_mounted());
		p[5] = wit_slot(wit_ask('m'));
		umount2(WIT_MNT_DIR, MNT_DETACH);
	} else {
		p[4] = -errno;
	}
	p[6] = wit_slot(wit_ask('g'));
	p[7] = wit_slot(wit_setgroups_deny());
}

/* Whole seconds from a to b (nanoseconds), or the errno of either reading. */
static int wit_seconds(long long a, long long b)
{
	if (a < 0)
		return (int)a;
	if (b < 0)
		return (int)b;
	long long d = b - a, s = d / 1000000000LL;
	return wit_slot(d < 0 && d % 1000000000LL ? s - 1 : s);
}

/* After witness_seen(): the time namespace offsets (the OP_TIME slots of the harness). */
static void witness_time(void)
{
	if (!wit_rec || wit.forked != 1)
		return;
	int *p = wit_rec->time, fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = write(fd, WIT_OFFSETS, strlen(WIT_OFFSETS));
		p[0] = 1;
		p[1] = n < 0 ? -errno : (size_t)n == strlen(WIT_OFFSETS) ? 1 : -EIO;
		close(fd);
	} else {
		p[0] = -errno;
	}
	long long a = wit_clock(CLOCK_MONOTONIC), theirs = wit_ask('t'), b = wit_clock(CLOCK_MONOTONIC);
	p[2] = theirs < 0 ? wit_slot(theirs) : a < 0 ? (int)a : b < 0 ? (int)b : a <= theirs && theirs <= b;
	long long mono = wit_clock(CLOCK_MONOTONIC), boot = wit_clock(CLOCK_BOOTTIME), v[2];
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) != 0) {
		p[3] = p[4] = -errno;
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		long long out[2] = { wit_clock(CLOCK_MONOTONIC), wit_clock(CLOCK_BOOTTIME) };
		_exit(write(pp[1], out, sizeof(out)) == sizeof(out) ? 0 : 1);
	}
	close(pp[1]);
	ssize_t got = pid < 0 ? -1 : read(pp[0], v, sizeof(v));
	int e = pid < 0 ? errno : got == (ssize_t)sizeof(v) ? 0 : EPIPE;
	close(pp[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if (e) {
		p[3] = p[4] = -e;
		return;
	}
	p[3] = wit_seconds(mono, v[0]);
	p[4] = wit_seconds(boot, v[1]);
}

/* First of all (setup field shared_mount): a private mount namespace with a shared tmpfs on
 * WIT_SHARED_DIR holding the caller's and the witness's directories. */
static void shared_mount(struct ctx *x)
{
	struct marks before, after;
	if (mkdir(WIT_SHARED_DIR, 0755) != 0 && errno != EEXIST)
		setup_fail(x, OP_SHARED_MOUNT);
	root_mount_id(&before);
	setup_op(x, OP_SHARED_MOUNT, raw_unshare(U_CLONE_NEWNS));
	/* Never trust the kernel under test: a copy has a new root mount. Without one the mounts
	 * below would land in the sandbox's namespace (EPROTO: success reported, nothing made). */
	root_mount_id(&after);
	if (before.mnt_err || after.mnt_err || before.mnt == after.mnt) {
		errno = EPROTO;
		setup_fail(x, OP_SHARED_MOUNT);
	}
	setup_op(x, OP_SHARED_MOUNT, mount("uf-shared", WIT_SHARED_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	setup_op(x, OP_SHARED_MOUNT, mkdir(WIT_SHARED_CALLER, 0755));
	setup_op(x, OP_SHARED_MOUNT, mkdir(WIT_SHARED_WITNESS, 0755));
	setup_op(x, OP_SHARED_MOUNT, mount("none", WIT_SHARED_DIR, NULL, MS_SHARED, NULL));
}

/* After witness_time(): the caller mounts on its directory of the shared tmpfs and asks the
 * witness whether it sees it; the witness mounts on its own; the caller looks for it (the
 * OP_SHARED slots of the harness). */
static void witness_shared(void)
{
	if (!wit_rec || wit.forked != 1)
		return;
	int *p = wit_rec->shared;
	p[0] = wit_slot(wit_mount_shared(WIT_SHARED_CALLER));
	if (p[0] == 1)
		p[1] = wit_slot(wit_ask('a'));
	p[2] = wit_slot(wit_ask('B'));
	if (p[2] == 1)
		p[3] = wit_slot(wit_shared_mounted(WIT_SHARED_WITNESS));
}

/* ---- judging (check/inside_witness.rs) ---- */

/* A write predicted allowed, or refused with `refused`: got 1 (done and read back), 0 (reported
 * done but not there), -errno, or NONE (not tried). Other errnos leave it unjudged. */
static void wit_write(const char *what, int allowed, int refused, int got)
{
	char eb[16], rb[16];
	if (got == NONE || (allowed && got == 1) || (!allowed && got == -refused))
		return;
	if (got == 0)
		differ(-1, "%s returned 0, but the writer then read back something else", what);
	else if (allowed && (got == -EPERM || got == -EACCES))
		differ(-1, "%s failed with %s, where the model has it allowed", what, errno_name(-got, eb, sizeof(eb)));
	else if (!allowed && got == 1)
		differ(-1, "%s succeeded, where the model has it fail with %s", what, errno_name(refused, rb, sizeof(rb)));
	else if (!allowed && (got == -EPERM || got == -EACCES))
		differ(-1, "%s failed with %s, where the model has %s", what, errno_name(-got, eb, sizeof(eb)),
		       errno_name(refused, rb, sizeof(rb)));
}

static void wit_seen_check(const char *what, int kept, int got)
{
	if (got != 0 && got != 1)
		return;
	if (kept && !got)
		differ(-1, "%s is not seen, though the model keeps the namespace both are in", what);
	if (!kept && got)
		differ(-1, "%s is seen across namespaces the model has apart", what);
}

/* A mount on the shared tmpfs, looked for from the other side: whether it reaches there. */
static void wit_propagated(const char *what, int reaches, const char *relation, int got)
{
	if (got != 0 && got != 1)
		return;
	if (reaches && !got)
		differ(-1, "%s is not seen, though the model has %s, where it propagates", what, relation);
	if (!reaches && got)
		differ(-1, "%s is seen, though the model has %s, where it does not propagate", what, relation);
}

static void wit_clock_check(const char *what, int want, int ahead)
{
	if (ahead == NONE || ahead < 0)
		return;
	if (ahead < want || ahead > want + WIT_SLACK_S)
		differ(-1, "a child forked after the write reads %s %d s ahead of the caller, where %d s (+%d) was due",
		       what, ahead, want, WIT_SLACK_S);
}

/* mount: -1 not predicted (chroot, no /proc); setgroups: -1 not predicted, 0 as the witness's,
 * 1 deny; time: -1 not predicted, 0 written, else the errno of the refusal. */
static void wit_judge(int uts_kept, int caller_sets, int witness_sets, int mount, int mount_allowed, int mount_kept,
		      int setgroups, int time, int child_forks)
{
	if (!wit_rec) {
		differ(-1, "the inside witness's readings could not be shared (mmap failed)");
		return;
	}
	const int *s = wit_rec->seen, *t = wit_rec->time;
	if (s[8] != 1) {
		differ(-1, "the inside witness was not forked (%d)", s[8]);
		return;
	}
	wit_write("the caller's sethostname", caller_sets, EPERM, s[0]);
	wit_write("the witness's sethostname", witness_sets, EPERM, s[2]);
	if (s[0] == 1)
		wit_seen_check("the caller's hostname, read by the witness,", uts_kept, s[1]);
	if (s[2] == 1)
		wit_seen_check("the witness's hostname, read by the caller,", uts_kept, s[3]);
	if (mount >= 0) {
		wit_write("the caller's tmpfs mount", mount_allowed, EPERM, s[4]);
		if (s[4] == 1)
			wit_seen_check("the caller's tmpfs, looked for by the witness,", mount_kept, s[5]);
	}
	if (setgroups >= 0 && (s[7] == 0 || s[7] == 1) && (s[6] == 0 || s[6] == 1)) {
		if (setgroups == 0 && s[7] != s[6])
			differ(-1, "the caller's setgroups reads %s, the witness's %s: a user namespace made by unshare inherits its parent's",
			       s[7] ? "deny" : "allow", s[6] ? "deny" : "allow");
		if (setgroups == 1 && s[7] != 1)
			differ(-1, "the caller's setgroups reads allow after write_maps wrote deny");
	}
	if (time < 0 || t[0] != 1)
		return;
	wit_write("writing timens_offsets", time == 0, time == 0 ? EPERM : time, t[1]);
	if (t[2] == 0)
		differ(-1, "the caller's CLOCK_MONOTONIC differs from the witness's: offsets reached the caller");
	if (!child_forks)
		return;
	wit_clock_check("CLOCK_MONOTONIC", t[1] == 1 ? WIT_MONO_S : 0, t[3]);
	wit_clock_check("CLOCK_BOOTTIME", t[1] == 1 ? WIT_BOOT_S : 0, t[4]);
}

/* relation: 0 one mount namespace, 1 peer copies, 2 a slave copy (model::inside_witness::SharedRelation). */
static void wit_judge_shared(int relation, int caller_allowed, int witness_allowed)
{
	static const char *names[] = { "one mount namespace", "peer copies of a shared mount",
				       "a shared mount and its slave copy" };
	if (!wit_rec || wit_rec->seen[8] != 1)
		return;
	const int *p = wit_rec->shared;
	wit_write("the caller's mount on the shared tmpfs", caller_allowed, EPERM, p[0]);
	wit_write("the witness's mount on the shared tmpfs", witness_allowed, EPERM, p[2]);
	if (p[0] == 1)
		wit_propagated("the caller's mount on the shared tmpfs, looked for by the witness,", relation != 2,
			       names[relation], p[1]);
	if (p[2] == 1)
		wit_propagated("the witness's mount on the shared tmpfs, looked for by the caller,", 1, names[relation], p[3]);
}
