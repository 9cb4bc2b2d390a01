/* Runs a command under a seccomp filter that allows every system call. Nothing is
 * blocked, but the process is now in seccomp filter mode (Seccomp: 2), as in a
 * container, so the harness's probe must list it as a restriction.
 * usage: with-seccomp-filter COMMAND [ARGS...]
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_fprog prog = { .len = 1, .filter = allow };
	if (argc < 2) {
		fprintf(stderr, "usage: with-seccomp-filter COMMAND [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
		perror("with-seccomp-filter: installing the filter");
		return 2;
	}
	execvp(argv[1], argv + 1);
	perror("with-seccomp-filter: exec");
	return 2;
}
