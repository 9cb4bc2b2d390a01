/* ---- comparisons (src/repro/checks.c), as the harness's invariants (src/check/) ---------------
 *
 * The generated case_judge() calls one of these per expectation of the model, with the
 * expected value inline. Each prints a MISMATCH line for a difference. A check that needs what
 * this kernel lacks (a link that is missing or unreliable, kcmp) is off: sandbox.c probed it
 * and said so before the case ran.
 */
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
	if (want == KC_ANY)
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

/* ---- the result of a step ---- */

/* Prints the step, what the model expects and what the kernel gave; a different result is a
 * difference. Returns the kernel's result (0 or the errno). */
static int step_result(const struct record *r, int k, const char *what, int want, const char *rule)
{
	char b1[16], b2[16];
	int got = r->step[k].err;
	const char *want_s = result_name(want, b1, sizeof(b1)), *got_s = result_name(got, b2, sizeof(b2));
	printf("step %d: %s\n  expected: %s (rule %s)\nstep %d: observed %s\n", k, what, want_s, rule, k, got_s);
	if (got != want)
		differ(k, "the model expected %s, the kernel returned %s", want_s, got_s);
	return got;
}

/* The snapshot before step k. */
static const struct snap *before_step(const struct record *r, int k)
{
	return k == 0 ? &r->before : &r->step[k - 1].after;
}

/* failure-changes-nothing: every observed difference between a and b. */
static void unchanged(int step, const struct snap *a, const struct snap *b, const char *why, int skip_sysvsem)
{
	char x[32], y[32];
	for (int k = 0; k < NLINKS; k++) {
		if (K.link_ok[k] && !same_link(a, k, b, k)) {
			show_ns(x, sizeof(x), a->ino[k], a->err[k]);
			show_ns(y, sizeof(y), b->ino[k], b->err[k]);
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
	for (int k = 0; k < a->nsibs && k < b->nsibs && K.kcmp; k++) {
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

/* ---- success-changes-exactly-predicted: one check per link, then the rest ---- */

/* The snapshots a new namespace must not appear in, and the new ones seen so far in a step. */
struct fresh {
	const struct snap *seen[4];
	unsigned long long ino[NLINKS];
	int n;
};

/* Only links that name namespaces reliably count: gVisor gives an unreliable link a new inode
 * number at every read, from the counter that numbers new namespaces too. */
static int inode_in(unsigned long long ino, const struct snap *s)
{
	for (int k = 0; k < NLINKS; k++)
		if (K.link_ok[k] && s->err[k] == 0 && s->ino[k] == ino)
			return 1;
	return 0;
}

/* ino (read with err) names a namespace none of f->seen showed and no other new link has. */
static int is_fresh(struct fresh *f, unsigned long long ino, int err)
{
	if (err)
		return 0;
	for (int i = 0; i < 4; i++)
		if (f->seen[i] && inode_in(ino, f->seen[i]))
			return 0;
	for (int j = 0; j < f->n; j++)
		if (f->ino[j] == ino)
			return 0;
	f->ino[f->n++] = ino;
	return 1;
}

/* Link k after the step: `want` is LINK_UNCHANGED, LINK_FRESH, LINK_BEFORE_OF(j), LINK_AFTER_OF(j),
 * LINK_AT_START(j) (f->seen[1] is the case's first snapshot) or -errno (unreadable). */
static void link_is(int step, struct fresh *f, const struct snap *b, const struct snap *a, int k, int want)
{
	char eb[16], got[32], other[32];
	if (!K.link_ok[k] || (want >= 100 && !K.link_ok[want % 100]))
		return;
	show_ns(got, sizeof(got), a->ino[k], a->err[k]);
	if (want == LINK_UNCHANGED) {
		if (!same_link(b, k, a, k))
			differ(step, "ns/%s should not change, got %s", LINK_NAMES[k], got);
	} else if (want == LINK_FRESH) {
		if (a->err[k])
			differ(step, "ns/%s should be a new namespace, but reading it gave %s", LINK_NAMES[k], got);
		else if (!is_fresh(f, a->ino[k], 0))
			differ(step, "ns/%s should be a new namespace, but inode %s was alive before or is shared",
			       LINK_NAMES[k], got);
	} else if (want >= 300) {
		show_ns(other, sizeof(other), f->seen[1]->ino[want - 300], f->seen[1]->err[want - 300]);
		if (!same_link(a, k, f->seen[1], want - 300))
			differ(step, "ns/%s should equal ns/%s as it was before the first step %s, got %s", LINK_NAMES[k],
			       LINK_NAMES[want - 300], other, got);
	} else if (want >= 200) {
		show_ns(other, sizeof(other), a->ino[want - 200], a->err[want - 200]);
		if (!same_link(a, k, a, want - 200))
			differ(step, "ns/%s should equal ns/%s %s, got %s", LINK_NAMES[k], LINK_NAMES[want - 200], other,
			       got);
	} else if (want >= 100) {
		show_ns(other, sizeof(other), b->ino[want - 100], b->err[want - 100]);
		if (!same_link(a, k, b, want - 100))
			differ(step, "ns/%s should equal the earlier ns/%s %s, got %s", LINK_NAMES[k],
			       LINK_NAMES[want - 100], other, got);
	} else if (a->err[k] != -want) {
		differ(step, "ns/%s should be unreadable with %s, got %s", LINK_NAMES[k], errno_name(-want, eb, sizeof(eb)),
		       got);
	}
}

static void creds_are(int step, const struct snap *a, unsigned uid, unsigned gid, unsigned long long cap)
{
	if (a->uid != uid || a->euid != uid || a->gid != gid || a->egid != gid || a->cap_eff != cap)
		differ(step, "credentials: expected uid/gid %u/%u CapEff %#llx, got uid %u gid %u euid %u egid %u CapEff %#llx",
		       uid, gid, cap, a->uid, a->gid, a->euid, a->egid, a->cap_eff);
}

static void pid_is(int step, const struct snap *b, const struct snap *a, int want)
{
	if ((want == PID_UNCHANGED && a->pid != b->pid) || (want == PID_CHANGED && a->pid == b->pid) ||
	    (want == PID_ONE && a->pid != 1))
		differ(step, "getpid %d -> %d, expected %s", b->pid, a->pid,
		       want == PID_UNCHANGED ? "unchanged" : want == PID_CHANGED ? "a new process" : "pid 1");
}

static void threads_are(int step, const struct snap *b, const struct snap *a, unsigned want)
{
	if (a->threads != want)
		differ(step, "threads %u -> %u, expected %u", b->threads, a->threads, want);
}

/* The umask and the fds' flags never change on success; the cwd only where cwd_may_change. */
static void kept(int step, const struct snap *b, const struct snap *a, int cwd_may_change)
{
	if (!cwd_may_change && (a->cwd_err != b->cwd_err || a->cwd_dev != b->cwd_dev || a->cwd_ino != b->cwd_ino))
		differ(step, "the cwd changed");
	if (a->umask != b->umask)
		differ(step, "the umask changed %o -> %o", b->umask, a->umask);
	for (int f = 0; f < b->nfds && f < a->nfds; f++)
		if (a->fd_flags[f] != b->fd_flags[f])
			differ(step, "the flags of fd #%d changed %d -> %d", f, b->fd_flags[f], a->fd_flags[f]);
}

/* ---- kcmp-matches-model and sysvsem-undo-detached ---- */

/* kcmp of type t (fd == -1) or KCMP_FILE of every setup fd (fd == 1) against sibling s. */
static void kcmp_is(int step, const struct snap *a, int s, const char *name, int t, int want)
{
	char buf[32], v[32];
	if (!K.kcmp)
		return;
	if (s >= a->nsibs) {
		differ(step, "no kcmp observed for sibling %d (%s)", s, name);
		return;
	}
	if (t >= 0 && !kcmp_matches(want, a->kcmp[s][t])) {
		show_value(v, sizeof(v), a->kcmp[s][t]);
		differ(step, "kcmp %s with sibling %d (%s): expected %s, got %s", KCMP_NAME[t], s, name,
		       kcmp_want(want, buf, sizeof(buf)), v);
	}
	for (int f = 0; t < 0 && f < a->nfds; f++) {
		if (!kcmp_matches(want, a->kcmp_file[s][f])) {
			show_value(v, sizeof(v), a->kcmp_file[s][f]);
			differ(step, "kcmp FILE fd #%d with sibling %d (%s): expected %s, got %s", f, s, name,
			       kcmp_want(want, buf, sizeof(buf)), v);
		}
	}
}

/* The semaphore's value after the call: want_errno 0 and the value, or the errno. */
static void sem_is(int step, const struct snap *a, int want_value, int want_errno)
{
	char got[32], eb[16];
	if (want_errno == 0 && a->semval != want_value) {
		show_value(got, sizeof(got), a->semval);
		differ(step, "semaphore after the call: expected %d, got %s", want_value, got);
	} else if (want_errno != 0 && a->semval != -want_errno) {
		show_value(got, sizeof(got), a->semval);
		differ(step, "semaphore after the call: expected %s, got %s", errno_name(want_errno, eb, sizeof(eb)), got);
	}
}

/* ---- the behavioural probes after the last step ---- */

/* The case ran every step; otherwise a difference, and the probes are not judged. */
static int finished(const struct record *r, int nsteps)
{
	if (r->steps_done == nsteps && r->done)
		return 1;
	printf("  MISMATCH: the case's process ended after %d of %d steps\n", r->steps_done, nsteps);
	differences++;
	return 0;
}

static void probe_is(const char *what, int got, int want)
{
	char v[32];
	if (got == want)
		return;
	show_value(v, sizeof(v), got);
	differ(-1, "%s: expected %s, observed %s", what, want ? "yes" : "no", v);
}

static void sem_outside_is(int got, int want)
{
	char v[32];
	if (got == want)
		return;
	show_value(v, sizeof(v), got);
	differ(-1, "the semaphore's value seen from the setup's IPC namespace: expected %d, observed %s", want, v);
}

/* ---- clone3-matches-model (src/check/clone3.rs) ---- */

/* The KCMP_SYSVSEM column against siblings: unchanged, except that a call that gave the
 * caller an undo list makes every sibling compare different. */
static void sysvsem_column(int step, const struct snap *b, const struct snap *a, int undo_list_made)
{
	for (int k = 0; k < b->nsibs && k < a->nsibs && K.kcmp; k++) {
		int was = b->kcmp[k][4], now = a->kcmp[k][4];
		int ok = undo_list_made && was >= 0 && was <= 2 ? now == 1 || now == 2 : now == was;
		if (!ok)
			differ(step, "kcmp sysvsem with sibling %d: %d -> %d, but %s", k, was, now,
			       undo_list_made ? "the call gave the caller an undo list" : "the caller's undo list did not change");
	}
}

/* A child is expected (want 1) or not; returns 1 when one is there and reported. */
static int child_there(int step, const struct child_obs *o, int want)
{
	if (!want && o->present)
		differ(step, "a child was observed for a failing call");
	else if (want && !o->present)
		differ(step, "no child was observed");
	else if (want && !o->reported)
		differ(step, "the child did not report");
	return want && o->present && o->reported;
}

/* The child's link k: CL_FRESH, CL_PARENT_BEFORE(j), CL_PARENT_AFTER(j) or CL_CHILD(j). */
static void child_link_is(int step, struct fresh *f, const struct snap *b, const struct snap *a,
			  const struct child_state *c, int k, int want)
{
	char got[32], what[64];
	int j = want % 100, ok;
	if (!K.link_ok[k] || (want >= 100 && !K.link_ok[j]))
		return;
	if (want >= 300) {
		ok = c->ino[k] == c->ino[j] && c->err[k] == c->err[j];
		snprintf(what, sizeof(what), "its own ns/%s", LINK_NAMES[j]);
	} else if (want >= 100) {
		const struct snap *s = want >= 200 ? a : b;
		ok = c->ino[k] == s->ino[j] && c->err[k] == s->err[j];
		snprintf(what, sizeof(what), "the parent's ns/%s %s", LINK_NAMES[j], want >= 200 ? "after" : "before");
	} else {
		ok = is_fresh(f, c->ino[k], c->err[k]);
		snprintf(what, sizeof(what), "a namespace the parent never showed");
	}
	if (!ok) {
		show_ns(got, sizeof(got), c->ino[k], c->err[k]);
		differ(step, "child ns/%s is %s, expected %s", LINK_NAMES[k], got, what);
	}
}

/* TID (1, or the value clone3 returned), ids and CapEff of the child. */
static void child_ids_are(int step, const struct child_obs *o, int tid_one, unsigned uid, unsigned gid,
			  unsigned long long cap)
{
	const struct child_state *c = &o->state;
	if (tid_one ? c->tid != 1 : c->tid != o->returned)
		differ(step, "child TID %d (clone3 returned %d), expected %s", c->tid, o->returned,
		       tid_one ? "One" : "Returned");
	if (c->uid != uid || c->euid != uid || c->gid != gid || c->egid != gid || c->cap_eff != cap)
		differ(step, "child ids %u/%u %u/%u CapEff %#llx, expected %u/%u CapEff %#llx", c->uid, c->euid, c->gid,
		       c->egid, c->cap_eff, uid, gid, cap);
}

/* The pids a clone3 set_tid step asked for: the child's own, and (unless -1) the one clone3
 * returned in the caller's pid namespace. */
static void child_set_tid_is(int step, const struct child_obs *o, int own, int has_returned, int returned)
{
	if (o->state.tid != own)
		differ(step, "child TID %d, set_tid asked for %d", o->state.tid, own);
	if (has_returned && o->returned != returned)
		differ(step, "clone3 returned %d, set_tid asked for %d in the caller's pid namespace", o->returned,
		       returned);
}

/* kcmp parent/child of type t, where someone could compare them (known) or nobody could. */
static void child_kcmp_is(int step, const struct child_state *c, int known, int t, int want)
{
	char buf[32], v[32];
	if (!K.kcmp)
		return;
	if (known != (c->kcmp_side != 0)) {
		if (t == 0)
			differ(step, "kcmp parent/child: expected %s, but %s", known ? "a comparison" : "none",
			       c->kcmp_side ? "one was made" : "nobody could compare");
	} else if (known && !kcmp_matches(want, c->kcmp[t])) {
		show_value(v, sizeof(v), c->kcmp[t]);
		differ(step, "kcmp %s parent/child: expected %s, got %s (%s side)", KCMP_NAME[t],
		       kcmp_want(want, buf, sizeof(buf)), v, c->kcmp_side == 1 ? "parent" : "child");
	}
}

/* What the caller saw: waitpid (0 when it reaps the child, else ECHILD), SIGCHLD (-1: not
 * modelled), the pidfd and the parent TID slots. */
static void child_seen(int step, const struct child_obs *o, int reaped, int sigchld, int pidfd, int parent_tid)
{
	char v[32], eb[16];
	if (reaped ? o->wait != 0 : o->wait != -ECHILD) {
		show_value(v, sizeof(v), o->wait);
		differ(step, "waitpid by the caller gave %s, expected %s", v, reaped ? "0" : errno_name(ECHILD, eb, sizeof(eb)));
	}
	if (sigchld >= 0 && sigchld != o->sigchld)
		differ(step, "SIGCHLD to the caller: %s, expected %s", o->sigchld ? "yes" : "no", sigchld ? "yes" : "no");
	if (o->pidfd != pidfd)
		differ(step, "pidfd stored: %s, expected %s", o->pidfd ? "yes" : "no", pidfd ? "yes" : "no");
	if (o->parent_tid != parent_tid)
		differ(step, "parent_tid stored: %s, expected %s", o->parent_tid ? "yes" : "no", parent_tid ? "yes" : "no");
}
/* ---- end of checks.c ---- */
