/*
 * gefsvm: the guest side of the Linux v9fs test (tests/vm/README.md), built with
 * `gcc -static` by tests/vm/setup and run as a multi-call tool inside the guest.
 *
 *   gefsvm mount PORT DIR OPTIONS   mount 9P from a virtio-serial port (see below)
 *   gefsvm excl PATH                open(O_CREAT|O_EXCL): "ok" or the errno's name
 *   gefsvm rename OLD NEW           rename(2): "ok" or the errno's name
 *   gefsvm stat PATH                lstat(2): mode uid gid nlink size atime mtime ctime
 *                                   (times as SECONDS.NANOSECONDS)
 *   gefsvm utimens PATH SEC NSEC    set atime and mtime to SEC.NSEC
 *   gefsvm statfs PATH              statfs(2): type bsize blocks bfree bavail files namelen
 *   gefsvm lock PATH START LEN      take a write lock (F_SETLK): "ok" or the errno's name;
 *                                   on success hold it until standard input closes
 *   gefsvm getlock PATH START LEN   F_GETLK for a write lock: "unlocked" or "locked TYPE"
 *   gefsvm chown PATH UID GID       lchown(2): "ok" or the errno's name
 *   gefsvm symlink TARGET PATH      symlink(2): "ok" or the errno's name
 *   gefsvm readlink PATH            readlink(2): the target, or the errno's name
 *   gefsvm link OLD NEW             link(2): "ok" or the errno's name
 *   gefsvm mknod PATH fifo|chr      mknod(2): "ok" or the errno's name
 *   gefsvm creates DIR N SIZE       create N files of SIZE bytes in DIR (open O_CREAT|O_EXCL,
 *                                   write, close each): "N SECONDS" on success, or
 *                                   "FAIL ..." naming the file and the errno
 *   gefsvm ftrunc0 PATH UID         as UID: create PATH with mode 0 for reading and writing,
 *                                   write 10 bytes, ftruncate(2) to 3, fstat(2): "ok SIZE"
 *                                   or the failing call's errno name
 *
 * Every syscall-trying command prints its outcome on standard output and exits 0, so that
 * the test script compares the outcome with what it expects; a usage error exits 2.
 *
 * Why `mount` relays: since Linux 5.10 the 9P fd transport refuses a file whose
 * write is not a plain user write ("kernel write not supported"), which a virtio-serial
 * port's is. So `mount` opens the port, makes a socketpair, hands the kernel one end as
 * rfdno/wfdno and forks two pump processes that copy bytes between the other end and the
 * port (one per direction, so that neither can block the other). The pumps live until the
 * kernel closes its end (at umount) or the port reports end of file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: gefsvm mount|excl|rename|stat|utimens|statfs|lock|getlock|"
			"chown|symlink|readlink|link|mknod|creates|ftrunc0 ARGS (see gefsvm.c)\n");
	return 2;
}

/* Print the outcome of a syscall that returned r. */
static int outcome(int r)
{
	if (r < 0 && strerrorname_np(errno))
		printf("%s\n", strerrorname_np(errno));
	else if (r < 0) /* the kernel's own codes, such as 526 (ENOTSUPP) */
		printf("E%d\n", errno);
	else
		printf("ok\n");
	return 0;
}

/* Copy everything from `in` to `out` until end of file or an error; then exit. */
static void pump(int in, int out)
{
	static char buf[1 << 17];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(1);
			off += w;
		}
	}
}

static int do_mount(const char *port, const char *dir, const char *opts)
{
	int p = open(port, O_RDWR | O_CLOEXEC);
	if (p < 0) {
		fprintf(stderr, "gefsvm: open %s: %s\n", port, strerror(errno));
		return 1;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("gefsvm: socketpair");
		return 1;
	}
	/* The two pumps: port -> kernel and kernel -> port. */
	for (int dirn = 0; dirn < 2; dirn++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("gefsvm: fork");
			return 1;
		}
		if (pid == 0) {
			close(sv[1]);
			setsid();
			if (dirn == 0)
				pump(p, sv[0]);
			else
				pump(sv[0], p);
		}
	}
	close(sv[0]);
	close(p);
	char o[1024];
	int n = snprintf(o, sizeof o, "trans=fd,rfdno=%d,wfdno=%d%s%s", sv[1], sv[1],
			 *opts ? "," : "", opts);
	if (n < 0 || (size_t)n >= sizeof o) {
		fprintf(stderr, "gefsvm: options too long\n");
		return 1;
	}
	if (mount("gefs", dir, "9p", 0, o) < 0) {
		fprintf(stderr, "gefsvm: mount %s on %s (%s): %s\n", port, dir, o, strerror(errno));
		return 1;
	}
	close(sv[1]);
	return 0;
}

static void print_ts(struct timespec t)
{
	printf(" %lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
}

static int do_stat(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return outcome(-1);
	printf("%o %u %u %lu %lld", st.st_mode, st.st_uid, st.st_gid, (unsigned long)st.st_nlink,
	       (long long)st.st_size);
	print_ts(st.st_atim);
	print_ts(st.st_mtim);
	print_ts(st.st_ctim);
	printf("\n");
	return 0;
}

static int do_lock(const char *path, int cmd, const char *start, const char *len)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return outcome(-1);
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = atoll(start),
		.l_len = atoll(len),
	};
	if (fcntl(fd, cmd, &fl) < 0)
		return outcome(-1);
	if (cmd == F_GETLK) {
		if (fl.l_type == F_UNLCK)
			printf("unlocked\n");
		else
			printf("locked %s\n", fl.l_type == F_WRLCK ? "write" : "read");
		return 0;
	}
	printf("ok\n");
	fflush(stdout);
	/* Hold the lock until standard input closes. */
	char c;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

/* Create n files of size bytes in dir, timed with the monotonic clock. */
static int do_creates(const char *dir, long n, long size)
{
	static char data[1 << 16];
	if (n < 0 || size < 0 || size > (long)sizeof data)
		return usage();
	memset(data, 'x', sizeof data);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/f%06ld", dir, i);
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0) {
			printf("FAIL open %s: %s\n", path, strerror(errno));
			return 0;
		}
		if (write(fd, data, (size_t)size) != size) {
			printf("FAIL write %s: %s\n", path, strerror(errno));
			return 0;
		}
		if (close(fd) < 0) {
			printf("FAIL close %s: %s\n", path, strerror(errno));
			return 0;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%ld %.3f\n", n, secs);
	return 0;
}

/* POSIX: a descriptor open for writing may truncate its file whatever the file's mode. */
static int do_ftrunc0(const char *path, const char *uid)
{
	uid_t u = (uid_t)atol(uid);
	if (setgid(u) < 0 || setuid(u) < 0)
		return outcome(-1);
	int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0);
	if (fd < 0)
		return outcome(-1);
	struct stat st;
	if (write(fd, "0123456789", 10) != 10 || ftruncate(fd, 3) < 0 || fstat(fd, &st) < 0)
		return outcome(-1);
	printf("ok %lld\n", (long long)st.st_size);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "mount") && argc == 5)
		return do_mount(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "excl") && argc == 3) {
		int fd = open(argv[2], O_CREAT | O_EXCL | O_WRONLY, 0644);
		outcome(fd);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (!strcmp(cmd, "rename") && argc == 4)
		return outcome(rename(argv[2], argv[3]));
	if (!strcmp(cmd, "stat") && argc == 3)
		return do_stat(argv[2]);
	if (!strcmp(cmd, "utimens") && argc == 5) {
		struct timespec ts[2];
		ts[0].tv_sec = ts[1].tv_sec = atoll(argv[3]);
		ts[0].tv_nsec = ts[1].tv_nsec = atol(argv[4]);
		return outcome(utimensat(AT_FDCWD, argv[2], ts, AT_SYMLINK_NOFOLLOW));
	}
	if (!strcmp(cmd, "statfs") && argc == 3) {
		struct statfs s;
		if (statfs(argv[2], &s) < 0)
			return outcome(-1);
		printf("%lx %ld %llu %llu %llu %llu %ld\n", (unsigned long)s.f_type, (long)s.f_bsize,
		       (unsigned long long)s.f_blocks, (unsigned long long)s.f_bfree,
		       (unsigned long long)s.f_bavail, (unsigned long long)s.f_files,
		       (long)s.f_namelen);
		return 0;
	}
	if (!strcmp(cmd, "lock") && argc == 5)
		return do_lock(argv[2], F_SETLK, argv[3], argv[4]);
	if (!strcmp(cmd, "getlock") && argc == 5)
		return do_lock(argv[2], F_GETLK, argv[3], argv[4]);
	if (!strcmp(cmd, "chown") && argc == 5)
		return outcome(lchown(argv[2], (uid_t)atol(argv[3]), (gid_t)atol(argv[4])));
	if (!strcmp(cmd, "symlink") && argc == 4)
		return outcome(symlink(argv[2], argv[3]));
	if (!strcmp(cmd, "readlink") && argc == 3) {
		char buf[4096];
		ssize_t n = readlink(argv[2], buf, sizeof buf - 1);
		if (n < 0)
			return outcome(-1);
		buf[n] = 0;
		printf("%s\n", buf);
		return 0;
	}
	if (!strcmp(cmd, "link") && argc == 4)
		return outcome(link(argv[2], argv[3]));
	if (!strcmp(cmd, "creates") && argc == 5)
		return do_creates(argv[2], atol(argv[3]), atol(argv[4]));
	if (!strcmp(cmd, "mknod") && argc == 4) {
		mode_t m = !strcmp(argv[3], "fifo") ? S_IFIFO : S_IFCHR;
		return outcome(mknod(argv[2], m | 0644, m == S_IFCHR ? makedev(1, 3) : 0));
	}
	if (!strcmp(cmd, "ftrunc0") && argc == 4)
		return do_ftrunc0(argv[2], argv[3]);
	return usage();
}
