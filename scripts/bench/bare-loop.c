/* The bare limit of one fuzz case: fork, the case's raw unshare calls in the child, _exit, wait.
 * No setup, no observation, no IPC. Reads the cases from stdin, one per line as hex flag words
 * (`unshare-fuzz decode --raw-flags FILES...` prints them), and runs them round robin for
 * SECONDS (default 10). Prints "bare: N cases in T s: R cases/s".
 *
 * Build: gcc -O2 -o bare-loop scripts/bench/bare-loop.c
 * unshare is called as syscall(SYS_unshare, (unsigned long)flags), never glibc's int unshare().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 100000
#define MAX_STEPS 8

static unsigned long long cases[MAX_CASES][MAX_STEPS];
static int nsteps[MAX_CASES];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10.0;
	char line[4096];
	int n = 0;
	while (n < MAX_CASES && fgets(line, sizeof(line), stdin)) {
		char *p = line, *end;
		int k = 0;
		while (k < MAX_STEPS) {
			unsigned long long f = strtoull(p, &end, 0);
			if (end == p)
				break;
			cases[n][k++] = f;
			p = end;
		}
		if (k) {
			nsteps[n] = k;
			n++;
		}
	}
	if (n == 0) {
		fprintf(stderr, "bare-loop: no cases on stdin (expected lines of hex flag words)\n");
		return 2;
	}
	long done = 0;
	double start = now(), t = start;
	while (t - start < seconds) {
		int c = done % n;
		pid_t pid = fork();
		if (pid < 0) {
			perror("bare-loop: fork");
			return 2;
		}
		if (pid == 0) {
			for (int k = 0; k < nsteps[c]; k++)
				syscall(SYS_unshare, (unsigned long)cases[c][k]);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid) {
			perror("bare-loop: waitpid");
			return 2;
		}
		done++;
		if ((done & 63) == 0)
			t = now();
	}
	t = now();
	printf("bare: %ld cases in %.1f s: %.0f cases/s (%d distinct cases)\n", done, t - start,
	       done / (t - start), n);
	return 0;
}
