/* ---- caps and thread_call steps (exec/child/caps.rs, model/caps.rs) ---- */
/* One caps operation, numbered as case::CapsOp::ALL: 0..6 drop one capability (drop_cap),
 * 7 drops all but CAP_SYS_ADMIN, 8 empties the bounding set but for it, 9 keepcaps + uid
 * 65534, 10 raises the effective set to the permitted one. 0 or the errno. */
static int step_caps(int op, unsigned long long drop_mask)
{
	unsigned long long e, p, i;
	switch (op) {
	case 8:
		for (int cap = 0; cap <= 63; cap++) {
			if (cap == 21)
				continue;
			if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0UL, 0UL, 0UL) != 0) {
				if (errno == EINVAL && cap > 21)
					return 0;
				return errno;
			}
		}
		return 0;
	case 9:
		if (prctl(PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) != 0 || syscall(SYS_setresuid, 65534, 65534, 65534) != 0 ||
		    prctl(PR_SET_DUMPABLE, 1UL, 0UL, 0UL, 0UL) != 0)
			return errno;
		return 0;
	case 10:
		if (cap_get(&e, &p, &i) != 0 || cap_set(p, p, i) != 0)
			return errno;
		return 0;
	default:
		if (cap_get(&e, &p, &i) != 0 || cap_set(e & ~drop_mask, p & ~drop_mask, i & ~drop_mask) != 0)
			return errno;
		return 0;
	}
}

struct thread_call {
	unsigned long long flags;
	volatile int done;
	int err;
};

static void *thread_call_main(void *arg)
{
	struct thread_call *t = arg;
	t->err = syscall(SYS_unshare, t->flags) == 0 ? 0 : errno;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

/* A new thread calls unshare(flags) and stays parked; 0 or the errno of pthread_create or of
 * the thread's unshare. (The thread's own links are judged by the harness, not here.) */
static int step_thread_call(unsigned long long flags)
{
	struct thread_call t = { flags, 0, 0 };
	pthread_t tid;
	int rc = pthread_create(&tid, NULL, thread_call_main, &t);
	if (rc != 0)
		return rc;
	pthread_detach(tid);
	while (!__atomic_load_n(&t.done, __ATOMIC_ACQUIRE))
		sched_yield();
	return t.err;
}

