/* The workloads of `cargo xtask bench`: tight syscall loops that time themselves.
 *
 *   loops getppid N    N x getppid()
 *   loops write N      N x write(fd, "x", 1) to /dev/null
 *   loops ioctl N      N x ioctl(FIONREAD) on a socket: an argument-sensitive syscall, whose
 *                      request cinch records (one hash lookup per call)
 *   loops storm N      two threads, N x getppid() each, released together
 *   loops forkexec N   N x fork() + execve("/bin/true") + waitpid()
 *   loops fork N       N x fork() + getppid() and _exit() in the child + waitpid(): churn
 *
 * Each prints one line on stdout:
 *
 *   cinch-bench: mode=getppid ops=N ns=WALL cpu_ns=CPU calls=C
 *
 * Both times cover only the timed loop, so what a tracer costs at start-up and at exit is not
 * in them. WALL is CLOCK_MONOTONIC (read through the vDSO: not a syscall). CPU is the CPU time
 * the work itself took: the calling thread's (CLOCK_THREAD_CPUTIME_ID; for `storm`, the mean of
 * the two threads'), or for `fork` and `forkexec` the process's plus its reaped children's
 * (getrusage). A BPF program on sys_enter or a seccomp filter runs in the calling thread, so it
 * is in CPU; time the thread spent preempted by other processes on a busy machine is not, which
 * makes CPU the steadier measure of an in-kernel cost. A tracer that stops the thread and works
 * in another process (strace) is only seen in WALL.
 *
 * C is how many times the measured syscall (getppid, write, ioctl, execve; getppid in the children of
 * `fork`) was made, warm-up included, so a recording's count can be checked against it: a
 * recorder that loses nothing has counted at least C.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 10000

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t thread_cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* User + system time of this process and of its reaped children. */
static uint64_t tree_cpu_ns(void)
{
	struct rusage self, children;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	return tv_ns(self.ru_utime) + tv_ns(self.ru_stime) + tv_ns(children.ru_utime) +
	       tv_ns(children.ru_stime);
}

static void report(const char *mode, uint64_t ops, uint64_t ns, uint64_t cpu_ns, uint64_t calls)
{
	printf("cinch-bench: mode=%s ops=%llu ns=%llu cpu_ns=%llu calls=%llu\n", mode,
	       (unsigned long long)ops, (unsigned long long)ns, (unsigned long long)cpu_ns,
	       (unsigned long long)calls);
	fflush(stdout);
}

static void getppid_n(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		(void)getppid();
}

static int bench_getppid(uint64_t n)
{
	getppid_n(WARMUP);
	uint64_t t0 = wall_ns(), c0 = thread_cpu_ns();
	getppid_n(n);
	uint64_t c1 = thread_cpu_ns(), t1 = wall_ns();
	report("getppid", n, t1 - t0, c1 - c0, n + WARMUP);
	return 0;
}

static int bench_write(uint64_t n)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("open /dev/null");
		return 1;
	}
	for (uint64_t i = 0; i < WARMUP; i++)
		if (write(fd, "x", 1) != 1)
			return 1;
	uint64_t t0 = wall_ns(), c0 = thread_cpu_ns();
	for (uint64_t i = 0; i < n; i++)
		if (write(fd, "x", 1) != 1)
			return 1;
	uint64_t c1 = thread_cpu_ns(), t1 = wall_ns();
	close(fd);
	/* The report itself is one more write (stdout), counted by a recorder too. */
	report("write", n, t1 - t0, c1 - c0, n + WARMUP);
	return 0;
}

static int bench_ioctl(uint64_t n)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	int pending;
	for (uint64_t i = 0; i < WARMUP; i++)
		if (ioctl(fd, FIONREAD, &pending) != 0)
			return 1;
	uint64_t t0 = wall_ns(), c0 = thread_cpu_ns();
	for (uint64_t i = 0; i < n; i++)
		if (ioctl(fd, FIONREAD, &pending) != 0)
			return 1;
	uint64_t c1 = thread_cpu_ns(), t1 = wall_ns();
	close(fd);
	report("ioctl", n, t1 - t0, c1 - c0, n + WARMUP);
	return 0;
}

struct storm {
	pthread_barrier_t start;
	uint64_t n;
	uint64_t cpu_ns[2];
};

struct storm_thread {
	struct storm *s;
	int index;
};

static void *storm_thread(void *arg)
{
	struct storm_thread *t = arg;
	getppid_n(WARMUP);
	pthread_barrier_wait(&t->s->start);
	uint64_t c0 = thread_cpu_ns();
	getppid_n(t->s->n);
	t->s->cpu_ns[t->index] = thread_cpu_ns() - c0;
	return NULL;
}

static int bench_storm(uint64_t n)
{
	struct storm s = { .n = n };
	struct storm_thread args[2] = { { &s, 0 }, { &s, 1 } };
	pthread_t t[2];
	pthread_barrier_init(&s.start, NULL, 3);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, storm_thread, &args[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&s.start);
	uint64_t t0 = wall_ns();
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	uint64_t t1 = wall_ns();
	report("storm", n, t1 - t0, (s.cpu_ns[0] + s.cpu_ns[1]) / 2, 2 * (n + WARMUP));
	return 0;
}

static int bench_forkexec(uint64_t n)
{
	char *const argv[] = { "true", NULL };
	char *const envp[] = { NULL };
	uint64_t t0 = wall_ns(), c0 = tree_cpu_ns();
	for (uint64_t i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			execve("/bin/true", argv, envp);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "/bin/true failed\n");
			return 1;
		}
	}
	uint64_t c1 = tree_cpu_ns(), t1 = wall_ns();
	report("forkexec", n, t1 - t0, c1 - c0, n);
	return 0;
}

static int bench_fork(uint64_t n)
{
	uint64_t t0 = wall_ns(), c0 = tree_cpu_ns();
	for (uint64_t i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			(void)getppid();
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
			fprintf(stderr, "child failed\n");
			return 1;
		}
	}
	uint64_t c1 = tree_cpu_ns(), t1 = wall_ns();
	report("fork", n, t1 - t0, c1 - c0, n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s getppid|write|ioctl|storm|forkexec|fork N\n", argv[0]);
		return 2;
	}
	char *end;
	uint64_t n = strtoull(argv[2], &end, 10);
	if (*end != '\0' || n == 0) {
		fprintf(stderr, "N must be a positive integer\n");
		return 2;
	}
	if (strcmp(argv[1], "getppid") == 0)
		return bench_getppid(n);
	if (strcmp(argv[1], "write") == 0)
		return bench_write(n);
	if (strcmp(argv[1], "ioctl") == 0)
		return bench_ioctl(n);
	if (strcmp(argv[1], "storm") == 0)
		return bench_storm(n);
	if (strcmp(argv[1], "forkexec") == 0)
		return bench_forkexec(n);
	if (strcmp(argv[1], "fork") == 0)
		return bench_fork(n);
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
