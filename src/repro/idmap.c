/* The idmap steps (issue 16 class 3, case::idmap): one write(2) of setgroups (file 0: "deny"),
 * uid_map (file 1) or gid_map (file 2). The lines are relative to own (the caller's id before
 * its last NEWUSER, or the witness's own id) and own ^ 1 (an id the writer does not own); kind
 * is the position in IdmapLines::ALL: own, foreign, two extents, overlap, count 0. dir is
 * AT_FDCWD with the caller's /proc/self paths, or the witness's descriptor of the caller's
 * /proc/self directory with bare names. Returns 0 or the errno. */
static int idmap_write(int dir, const char *const *paths, int file, int kind, unsigned own)
{
	char text[96] = "deny";
	unsigned other = own ^ 1;
	if (file == 1 || file == 2) {
		switch (kind) {
		case 0: snprintf(text, sizeof(text), "0 %u 1\n", own); break;
		case 1: snprintf(text, sizeof(text), "0 %u 1\n", other); break;
		case 2: snprintf(text, sizeof(text), "0 %u 1\n1 %u 1\n", own, other); break;
		case 3: snprintf(text, sizeof(text), "0 %u 1\n0 %u 1\n", own, other); break;
		default: snprintf(text, sizeof(text), "0 %u 0\n", own); break;
		}
	}
	int fd = openat(dir, paths[file], O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
	close(fd);
	return e;
}

/* The caller's own write. */
static int step_idmap(struct ctx *x, int file, int kind)
{
	static const char *const paths[] = { "/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map" };
	return idmap_write(AT_FDCWD, paths, file, kind, file == 1 ? x->outer_uid : x->outer_gid);
}

/* The witness's write (witness.c), op the position in IdmapOp::ALL: 0 setgroups, 1-5 uid_map,
 * 6-10 gid_map. Returns 0 or -errno. */
static long long wit_idmap(int dir, int op)
{
	static const char *const names[] = { "setgroups", "uid_map", "gid_map" };
	if (op < 0 || op > 10)
		return -EINVAL;
	if (dir < 0)
		return dir;
	int file = op == 0 ? 0 : op <= 5 ? 1 : 2, kind = op == 0 ? 0 : op <= 5 ? op - 1 : op - 6;
	return -(long long)idmap_write(dir, names, file, kind, file == 1 ? geteuid() : getegid());
}
