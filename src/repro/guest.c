/* ---- guest.c: a lowered fs.nr_open (guest-only, docs/guest-only.md) ---- */

/* The marks of a throwaway qemu guest started by scripts/kernels.sh or scripts/kcov.sh, as the
 * harness decides (env/guest.rs): the guest init's token in the environment AND a word starting
 * with uf.args= on the running kernel's command line. A host has neither. */
static int guest_is_throwaway(void)
{
	const char *t = getenv(GUEST_VAR);
	char buf[4096];
	if (!t || strcmp(t, GUEST_TOKEN) != 0)
		return 0;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (char *p = buf; (p = strstr(p, GUEST_CMDLINE_MARK)) != NULL; p++)
		if (p == buf || p[-1] == ' ')
			return 1;
	return 0;
}

static long guest_nr_open_saved = -1;

static long guest_read_nr_open(void)
{
	char buf[32] = {0};
	int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static int guest_write_nr_open(long v)
{
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%ld", v);
	int fd = open("/proc/sys/fs/nr_open", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ok = write(fd, buf, len) == len;
	close(fd);
	return ok ? 0 : -1;
}

/* Before anything: refuses (exit 2, nothing written) outside a throwaway guest; remembers
 * fs.nr_open, which guest_end() writes back. */
static void guest_begin(void)
{
	if (!guest_is_throwaway()) {
		printf("SKIP: this case lowers the global fs.nr_open; it runs only in a throwaway qemu guest "
		       "(%s=%s in the environment and %s on the kernel command line, as scripts/kernels.sh "
		       "boots it); nothing was written\n", GUEST_VAR, GUEST_TOKEN, GUEST_CMDLINE_MARK);
		exit(2);
	}
	guest_nr_open_saved = guest_read_nr_open();
	if (guest_nr_open_saved < 0) {
		printf("BROKEN: cannot read /proc/sys/fs/nr_open: %s\n", strerror(errno));
		exit(2);
	}
	printf("guest: throwaway qemu guest; fs.nr_open is %ld\n", guest_nr_open_saved);
}

static void guest_end(void)
{
	if (guest_nr_open_saved > 0 && guest_write_nr_open(guest_nr_open_saved) == 0)
		printf("guest: fs.nr_open restored to %ld\n", guest_nr_open_saved);
	else if (guest_nr_open_saved > 0)
		printf("note: fs.nr_open could not be restored to %ld: %s\n", guest_nr_open_saved, strerror(errno));
}

/* Setup (the case child, as exec/child/guest.rs): an fd on / moved to number fd. */
static void guest_fd_at(struct ctx *x, int fd)
{
	int f = open("/", O_RDONLY | O_DIRECTORY);
	if (f < 0)
		setup_fail(x, "move an fd to the setup's fd_at");
	int got = fcntl(f, F_DUPFD, fd);
	close(f);
	if (got != fd && got >= 0)
		errno = EBUSY;
	setup_op(x, "move an fd to the setup's fd_at", got == fd ? 0 : -1);
}

/* Setup: the global fs.nr_open lowered to nr (checked again here: never on a host). */
static void guest_nr_open(struct ctx *x, long nr)
{
	if (!guest_is_throwaway()) {
		errno = EPERM;
		setup_fail(x, "write /proc/sys/fs/nr_open (refused: not a throwaway qemu guest)");
	}
	setup_op(x, "write /proc/sys/fs/nr_open", guest_write_nr_open(nr));
}
/* ---- end of guest.c ---- */
