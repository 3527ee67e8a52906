/* A non-leader thread exits first, then the main thread makes a syscall used nowhere else
 * (getpriority). Then the leader itself exits (pthread_exit) while a second thread lives on and
 * makes another unique syscall (sysinfo): following the process must survive both exits. */
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

static void *short_lived(void *arg) {
    (void)arg;
    syscall(SYS_getppid);
    return NULL;
}

static void *outlives_leader(void *arg) {
    (void)arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct sysinfo info;
    syscall(SYS_sysinfo, &info);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, short_lived, NULL);
    pthread_join(t, NULL);
    syscall(SYS_getpriority, 0, 0);
    pthread_create(&t, NULL, outlives_leader, NULL);
    pthread_exit(NULL);
}
