/* ---- the probe of this kernel, the outer sandbox and the watchdog (src/repro/sandbox.c) ------
 *
 * In the order of the harness (exec/executor/sandbox.rs, exec/executor/probe.rs, exec/executor/headroom.rs, watch.rs):
 *   1. Outer sandbox, so that nothing a case does reaches the host: unshare(NEWNS|NEWUTS|
 *      NEWIPC|NEWNET|NEWPID), with NEWUSER and a "0 <uid> 1" map first when this process
 *      lacks CAP_SYS_ADMIN; make / private (on a throwaway kernel, UNSHARE_FUZZ_THROWAWAY_KERNEL=1,
 *      the run goes on without); fork pid 1 of the new pid namespace, which mounts its own
 *      /proc, chdirs to / and prepares the chroot tree on a private tmpfs at /tmp. The process
 *      that started stays outside and relays pid 1's exit status.
 *   2. pid 1 probes this kernel once (and makes the behavioural markers, markers.c): the room for nested pid and user namespaces (its place,
 *      from which the case's absolute pid-ns level and user-ns depth are reached), which links
 *      name namespaces reliably, kcmp, clone3 and pidfd_open. What is missing turns off the
 *      checks that need it, and is printed.
 *   3. pid 1 forks one case child under a watchdog: case_setup(), then case_steps() (in a
 *      vfork child when the case asks for one). Everything goes to shared memory.
 *   4. pid 1 judges (case_judge()), removes the semaphore, and exits 0 (agree), 1 (mismatch,
 *      timeout or crash) or 2 (could not run here).
 */
static void case_setup(struct ctx *x);
static void case_steps(struct ctx *x);
static void case_judge(const struct record *r, const struct snap *sandbox);

static pid_t case_pid;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	kill(-case_pid, SIGKILL);
	kill(case_pid, SIGKILL);
}

/* ---- the probe of this kernel (exec/executor/probe.rs, exec/executor/headroom.rs), run by pid 1 ---- */


/* A child that changed nothing must read every link as its parent does, twice. */
static void probe_links(void)
{
	unsigned long long own[NLINKS], seen[NLINKS];
	int err[NLINKS], seen_err[NLINKS];
	read_links("self", own, err);
	for (int k = 0; k < NLINKS; k++)
		K.link_ok[k] = err[k] == 0;
	for (int round = 0; round < 2; round++) {
		int p[2];
		if (pipe(p) != 0)
			return;
		pid_t pid = fork();
		if (pid == 0) {
			read_links("self", seen, seen_err);
			_exit(write(p[1], seen, sizeof(seen)) == (ssize_t)sizeof(seen) ? 0 : 1);
		}
		close(p[1]);
		int got = pid > 0 && read_exact(p[0], seen, sizeof(seen));
		close(p[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		for (int k = 0; k < NLINKS && got; k++)
			if (seen[k] != own[k])
				K.link_ok[k] = 0;
	}
}

/* Nested pid (user = 0) or user namespaces made in a throwaway chain until the kernel refuses;
 * how many, or -1 if the probe could not run. */
static int nested_room(int user)
{
	int p[2], made = 0;
	if (pipe(p) != 0)
		return -1;
	pid_t first = fork();
	if (first == 0) {
		close(p[0]);
		while (made < NESTED_MAX) {
			unsigned uid = geteuid(), gid = getegid();
			if (raw_unshare(user ? U_CLONE_NEWUSER : U_CLONE_NEWPID) != 0)
				break;
			made++;
			if (user && write_id_maps(uid, gid) != NULL)
				break;
			if (!user) {
				pid_t pid = fork();
				if (pid < 0)
					break;
				if (pid > 0) {
					waitpid(pid, NULL, 0);
					_exit(0);
				}
			}
		}
		_exit(write(p[1], &made, sizeof(made)) == (ssize_t)sizeof(made) ? 0 : 1);
	}
	close(p[1]);
	if (first < 0 || !read_exact(p[0], &made, sizeof(made)))
		made = -1;
	close(p[0]);
	if (first > 0)
		waitpid(first, NULL, 0);
	return made;
}

/* Probes what the comparison and the setup rely on, and prints what is turned off. */
static void probe_kernel(void)
{
	int pid_made = nested_room(0), user_made = nested_room(1);
	K.pid_level = pid_made >= 0 && pid_made <= PIDNS_MAX_LEVEL ? PIDNS_MAX_LEVEL - pid_made : -1;
	K.userns_depth = user_made >= 0 && user_made <= USERNS_MAX_DEPTH ? USERNS_MAX_DEPTH - user_made : -1;
	pid_t p80 = fork();
	if (p80 == 0)
		_exit(raw_unshare_int80(0) == 0 ? 0 : 1);
	int s80 = 0;
	K.int80 = p80 > 0 && waitpid(p80, &s80, 0) == p80 && WIFEXITED(s80) && WEXITSTATUS(s80) == 0;
	if (!K.int80)
		printf("off: the i386 entry (int $0x80 did not answer unshare(0) in a probe child)\n");
	printf("probe: room for %d nested pid and %d nested user namespaces: pid-namespace level %d, "
	       "user-namespace depth %d (-1: unknown)\n", pid_made, user_made, K.pid_level, K.userns_depth);
	probe_links();
	for (int k = 0; k < NLINKS; k++)
		if (!K.link_ok[k])
			printf("off: the ns/%s link checks (the link is missing, or a child in the same namespaces "
			       "reads another id)\n", LINK_NAMES[k]);
	K.kcmp = syscall(SYS_kcmp, getpid(), getpid(), KCMP_TYPE[0], 0UL, 0UL) == 0;
	if (!K.kcmp)
		printf("off: the kcmp checks (kcmp(2) fails here: %s)\n", strerror(errno));
	K.clone3 = !(syscall(SYS_clone3, NULL, 0UL) < 0 && errno == ENOSYS);
	if (!K.clone3)
		printf("off: clone3 (ENOSYS here): clone3 steps are expected to fail with ENOSYS\n");
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	K.pidfd_open = fd >= 0;
	if (fd >= 0)
		close(fd);
	else
		printf("note: no pidfd_open (%s): /proc/<pid>/ns/pid and polling instead\n", strerror(errno));
}

/* Nesting counts from the sandbox's measured place (exec/child/plan.rs); 0, or 2 after printing why not. */
static int plan(int pidns_level, int userns_depth, int *pid_nesting, int *user_nesting)
{
	*pid_nesting = *user_nesting = 0;
	if (pidns_level >= 0) {
		if (K.pid_level < 0 || pidns_level < K.pid_level) {
			printf("BROKEN: cannot reach pid-namespace level %d from level %d here\n", pidns_level, K.pid_level);
			return 2;
		}
		*pid_nesting = pidns_level - K.pid_level;
	}
	if (userns_depth >= 0) {
		if (K.userns_depth < 0 || userns_depth < K.userns_depth) {
			printf("BROKEN: cannot reach user-namespace depth %d from depth %d here\n", userns_depth,
			       K.userns_depth);
			return 2;
		}
		*user_nesting = userns_depth - K.userns_depth;
	}
	return 0;
}

/* A private tmpfs on /tmp holding CHROOT_DIR with /proc bound inside and CHROOT_DIR again,
 * CHROOT_LEVELS deep (exec/executor/sandbox.rs `prepare_chroot_tree`); NULL or what failed. */
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

/* The case's process: the setup, then the steps (in a vfork child when asked). */
static void run_case(struct record *r, int pid_nesting, int user_nesting)
{
	struct ctx x;
	memset(&x, 0, sizeof(x));
	x.r = r;
	x.pid_nesting = pid_nesting;
	x.user_nesting = user_nesting;
	x.sem_id = -1;
	for (int i = 0; i < FDS; i++)
		x.fds[i] = -1;
	case_setup(&x);
	case_steps(&x);
	_exit(0);
}

/* The verdict: broken setup (2), differences (1), a case process that failed (2), or agreement (0). */
static int verdict(const struct record *r, const struct snap *sandbox, int exit_code)
{
	char eb[16];
	if (r->setup_op) {
		printf("BROKEN: setup failed: %s gave %s; the case could not be run here\n", r->setup_op,
		       errno_name(r->setup_errno, eb, sizeof(eb)));
		return 2;
	}
	case_judge(r, sandbox);
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

static int sandbox_pid1(int pidns_level, int userns_depth)
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
	for (int i = 0; i < NPROBES; i++)
		r->probe[i] = NONE;
	r->uts_set = r->uts_seen = NONE;
	for (int i = 0; i < 2; i++) {
		r->mark[i].net = r->mark[i].ipc = NONE;
		r->mark[i].mnt_err = ENODATA;
	}
	if (plan(pidns_level, userns_depth, &pid_nesting, &user_nesting) != 0)
		return 2;
	if (case_uses_int80 && !K.int80) {
		printf("BROKEN: this case calls unshare through int $0x80, and the i386 entry is missing here\n");
		return 2;
	}
	snapshot(NULL, &sandbox);
	fflush(stdout);
	case_pid = fork();
	if (case_pid < 0) {
		perror("repro: fork of the case child");
		return 2;
	}
	if (case_pid == 0)
		run_case(r, pid_nesting, user_nesting);
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
	r->uts_seen = read_uts();
	if (timed_out) {
		printf("MISMATCH: timeout: the case was still running after %d s\n", WATCHDOG_SECONDS);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		printf("MISMATCH: crash: the case's process died by signal %d\n", WTERMSIG(status));
		return 1;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	return verdict(r, &sandbox, code);
}

static int enter_sandbox_and_run(int pidns_level, int userns_depth)
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
		/* As the harness (exec/executor/sandbox.rs): a throwaway kernel (gVisor 2022 has no mount
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
		probe_kernel();
		make_markers();
		int code = sandbox_pid1(pidns_level, userns_depth);
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

/* title, json: the case; model, gen_kernel, gen_sandbox: where its expectations come from. */
static int repro_main(const char *title, const char *json, const char *model, const char *gen_kernel,
		      const char *gen_sandbox, int pidns_level, int userns_depth)
{
	struct utsname u;
	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	printf("unshare-fuzz reproducer\ncase: %s\ncase (JSON): %s\n", title, json);
	printf("expectations: model %s, computed for kernel %s (%s)\n", model, gen_kernel, gen_sandbox);
	printf("running on: %s %s\n", u.sysname, u.release);
	if (strcmp(u.release, gen_kernel) != 0)
		printf("note: this is not the kernel the expectations were computed for\n");
	return enter_sandbox_and_run(pidns_level, userns_depth);
}
/* ---- end of sandbox.c ---- */
