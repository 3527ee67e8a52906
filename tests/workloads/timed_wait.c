/*
 * A timed wait that signals interrupt without running a handler, the way the kernel then
 * resumes it with restart_syscall (arch_do_signal_or_restart(), -ERESTART_RESTARTBLOCK).
 *
 * One thread waits on a mutex the main thread holds, with a timeout
 * (pthread_mutex_timedlock: a futex wait with a deadline). Another thread forks children and
 * reaps them with SIGCHLD blocked, as does the main thread; SIGCHLD is at its default
 * (ignored), so each child's exit is queued for the only thread that does not block it, the
 * waiting one, whose wait is interrupted and restarted.
 *
 *   timed_wait sequential   children first, then the wait: nothing restarts
 *   timed_wait concurrent   children while the wait runs: the wait restarts once per child
 *
 * Exit 0 when the wait timed out as it should. Under a profile that denies restart_syscall,
 * glibc aborts ("The futex facility returned an unexpected error code").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILDREN 10

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *waiter(void *arg) {
    (void)arg;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 300 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = pthread_mutex_timedlock(&held, &deadline);
    return (void *)(long)rc;
}

static void *reaper(void *arg) {
    (void)arg;
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0)
            return (void *)1L;
        waitpid(pid, NULL, 0);
        usleep(10 * 1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int concurrent = argc > 1 && strcmp(argv[1], "concurrent") == 0;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    /* Inherited by both threads; the waiter unblocks it for itself. */
    pthread_sigmask(SIG_BLOCK, &chld, NULL);
    pthread_mutex_lock(&held);

    pthread_t w, r;
    void *wait_rc, *reap_rc;
    if (concurrent) {
        pthread_create(&w, NULL, waiter, NULL);
        usleep(20 * 1000);
        pthread_create(&r, NULL, reaper, NULL);
        pthread_join(r, &reap_rc);
        pthread_join(w, &wait_rc);
    } else {
        pthread_create(&r, NULL, reaper, NULL);
        pthread_join(r, &reap_rc);
        /* The children's SIGCHLDs are discarded here, before anything waits. */
        pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
        pthread_sigmask(SIG_BLOCK, &chld, NULL);
        pthread_create(&w, NULL, waiter, NULL);
        pthread_join(w, &wait_rc);
    }
    if (reap_rc != NULL) {
        fprintf(stderr, "fork failed\n");
        return 2;
    }
    if ((long)wait_rc != ETIMEDOUT) {
        fprintf(stderr, "the timed wait returned %s, not ETIMEDOUT\n", strerror((int)(long)wait_rc));
        return 1;
    }
    puts("timed out as expected");
    return 0;
}
