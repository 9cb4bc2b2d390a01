/* The idmap step (issue 16 class 3, case::idmap): one write(2) of the caller's own setgroups
 * (file 0: "deny"), uid_map (file 1) or gid_map (file 2). The lines are relative to the id
 * before the last NEWUSER (own) and own ^ 1 (an id the caller does not own); kind is the
 * position in IdmapLines::ALL: own, foreign, two extents, overlap, count 0. Returns 0 or the
 * errno. */
static int step_idmap(struct ctx *x, int file, int kind)
{
	static const char *const paths[] = { "/proc/self/setgroups", "/proc/self/uid_map", "/proc/self/gid_map" };
	char text[96] = "deny";
	unsigned own = file == 1 ? x->outer_uid : x->outer_gid, other = own ^ 1;
	if (file == 1 || file == 2) {
		switch (kind) {
		case 0: snprintf(text, sizeof(text), "0 %u 1\n", own); break;
		case 1: snprintf(text, sizeof(text), "0 %u 1\n", other); break;
		case 2: snprintf(text, sizeof(text), "0 %u 1\n1 %u 1\n", own, other); break;
		case 3: snprintf(text, sizeof(text), "0 %u 1\n0 %u 1\n", own, other); break;
		default: snprintf(text, sizeof(text), "0 %u 0\n", own); break;
		}
	}
	int fd = open(paths[file], O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
	close(fd);
	return e;
}
