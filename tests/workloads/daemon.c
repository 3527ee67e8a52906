/* The classic double fork: the parent exits, the child becomes a session leader and forks
 * again, the grandchild is re-parented to init and, after its parent and grandparent are gone,
 * makes a syscall nothing else makes (sched_get_priority_max). */
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    if (fork() != 0)
        _exit(0);
    setsid();
    if (fork() != 0)
        _exit(0);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    syscall(SYS_sched_get_priority_max, 0);
    _exit(0);
}
