/* A syscall storm on every core: N threads call getppid in a tight loop for SECONDS; one
 * thread makes a single getcpu and a single sync_file_range in the middle. Prints the exact
 * number of getppid calls made, for comparison with the recorded count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static double seconds = 1.0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall */
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *storm(void *arg) {
    unsigned long *count = arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < 1000; i++)
            syscall(SYS_getppid);
        n += 1000;
    }
    *count = n;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2)
        seconds = atof(argv[2]);
    pthread_t t[64];
    unsigned long counts[64] = {0};
    if (threads < 1 || threads > 64)
        return 2;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, storm, &counts[i]);
    double start = now();
    while (now() - start < seconds / 2)
        ;
    unsigned cpu;
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    int fd = open("/proc/self/exe", O_RDONLY);
    syscall(SYS_sync_file_range, fd, 0L, 0L, 0U);
    while (now() - start < seconds)
        ;
    atomic_store(&stop, 1);
    unsigned long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += counts[i];
    }
    printf("%lu %.3f\n", total, now() - start);
    return 0;
}
