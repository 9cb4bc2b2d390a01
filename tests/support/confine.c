/* Runs a command under a seccomp filter of the kinds container runtimes and
 * systemd install, or one that lies, so that tests can start the harness in a
 * restricted or lying environment (issue "Right wherever it runs").
 *
 * usage: confine [RULE...] [--] COMMAND [ARGS...]
 *   --unshare MASK=ERRNO   unshare(flags) with (flags & MASK) != 0 returns -ERRNO
 *                          without running; ERRNO 0 fakes success (a lying kernel)
 *   --clone MASK=ERRNO     the same for clone(2)'s flag argument
 *   --setns MASK=ERRNO     the same for setns(2)'s nstype argument
 *   --syscall NAME=ERRNO   every call of NAME returns -ERRNO (NAME: clone3, kcmp,
 *                          pidfd_open, setns, unshare, pidfd_getfd)
 *   MASK: a number (0x...) or CLONE_* names without the prefix joined by '|'
 *         (NEWUSER|NEWNET); ERRNO: a number or EPERM, ENOSYS, EINVAL, ENOSPC, EACCES.
 * With no rule, the filter allows everything (the process is still in seccomp
 * filter mode, as in a container). Rules are tried in order; calls of another
 * architecture are allowed. Sets no_new_privs, so it works without privilege.
 * x86_64 only; compiled by the tests with plain gcc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_INSNS 512

static struct sock_filter prog[MAX_INSNS];
static int len;

static void emit(struct sock_filter insn)
{
	if (len >= MAX_INSNS) {
		fprintf(stderr, "confine: too many rules\n");
		exit(2);
	}
	prog[len++] = insn;
}

static const struct { const char *name; unsigned long long bit; } flag_names[] = {
	{ "NEWTIME", 0x80 }, { "VM", 0x100 }, { "FS", 0x200 }, { "FILES", 0x400 },
	{ "SIGHAND", 0x800 }, { "THREAD", 0x10000 }, { "NEWNS", 0x20000 },
	{ "SYSVSEM", 0x40000 }, { "NEWCGROUP", 0x2000000 }, { "NEWUTS", 0x4000000 },
	{ "NEWIPC", 0x8000000 }, { "NEWUSER", 0x10000000 }, { "NEWPID", 0x20000000 },
	{ "NEWNET", 0x40000000 },
};

static const struct { const char *name; long nr; } call_names[] = {
	{ "clone3", SYS_clone3 }, { "kcmp", SYS_kcmp }, { "pidfd_open", SYS_pidfd_open },
	{ "setns", SYS_setns }, { "unshare", SYS_unshare }, { "pidfd_getfd", SYS_pidfd_getfd },
	{ "clone", SYS_clone },
};

static const struct { const char *name; int value; } errno_names[] = {
	{ "EPERM", EPERM }, { "ENOSYS", ENOSYS }, { "EINVAL", EINVAL },
	{ "ENOSPC", ENOSPC }, { "EACCES", EACCES }, { "EUSERS", EUSERS },
};

static void die_usage(const char *why, const char *arg)
{
	fprintf(stderr, "confine: %s: '%s' (see the comment at the top of confine.c)\n", why, arg);
	exit(2);
}

static unsigned long long parse_mask(char *text, const char *arg)
{
	unsigned long long mask = 0;
	for (char *tok = strtok(text, "|"); tok; tok = strtok(NULL, "|")) {
		char *end;
		unsigned long long v = strtoull(tok, &end, 0);
		if (*tok && !*end) {
			mask |= v;
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
			if (!strcmp(tok, flag_names[i].name))
				break;
		if (i == sizeof(flag_names) / sizeof(flag_names[0]))
			die_usage("unknown flag name", arg);
		mask |= flag_names[i].bit;
	}
	return mask;
}

static int parse_errno(const char *text, const char *arg)
{
	char *end;
	long v = strtol(text, &end, 0);
	if (*text && !*end && v >= 0 && v < 4096)
		return (int)v;
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (!strcmp(text, errno_names[i].name))
			return errno_names[i].value;
	die_usage("unknown errno", arg);
	return 0;
}

/* Returns -errno (without running the call) when (argN & mask) != 0. */
static void rule_masked(long nr, int argn, unsigned long long mask, int err)
{
	unsigned lo_off = offsetof(struct seccomp_data, args[0]) + 8 * argn;
	emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
	emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 5));
	emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, lo_off));
	emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (unsigned)mask, 2, 0));
	emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, lo_off + 4));
	emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (unsigned)(mask >> 32), 0, 1));
	emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)));
}

static void rule_call(long nr, int err)
{
	emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
	emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1));
	emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)));
}

int main(int argc, char **argv)
{
	int i = 1;
	emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
	emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			die_usage("option without a value", argv[i]);
		char *value = strdup(argv[i + 1]);
		char *eq = strchr(value, '=');
		if (!eq)
			die_usage("expected KEY=ERRNO", argv[i + 1]);
		*eq = 0;
		int err = parse_errno(eq + 1, argv[i + 1]);
		if (!strcmp(argv[i], "--unshare")) {
			rule_masked(SYS_unshare, 0, parse_mask(value, argv[i + 1]), err);
		} else if (!strcmp(argv[i], "--clone")) {
			rule_masked(SYS_clone, 0, parse_mask(value, argv[i + 1]), err);
		} else if (!strcmp(argv[i], "--setns")) {
			rule_masked(SYS_setns, 1, parse_mask(value, argv[i + 1]), err);
		} else if (!strcmp(argv[i], "--syscall")) {
			size_t k;
			for (k = 0; k < sizeof(call_names) / sizeof(call_names[0]); k++)
				if (!strcmp(value, call_names[k].name))
					break;
			if (k == sizeof(call_names) / sizeof(call_names[0]))
				die_usage("unknown system call", argv[i + 1]);
			rule_call(call_names[k].nr, err);
		} else {
			die_usage("unknown option", argv[i]);
		}
		free(value);
		i++;
	}
	emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	if (i >= argc) {
		fprintf(stderr, "usage: confine [--unshare|--clone|--setns MASK=ERRNO] [--syscall NAME=ERRNO] [--] COMMAND [ARGS...]\n");
		return 2;
	}
	struct sock_fprog fprog = { .len = (unsigned short)len, .filter = prog };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0) {
		perror("confine: installing the filter");
		return 2;
	}
	execvp(argv[i], argv + i);
	perror("confine: exec");
	return 2;
}
