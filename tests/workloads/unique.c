/* Sleeps, then makes one syscall chosen by argv[1] ("max" or "min"): two concurrent
 * recordings must each see only their own. */
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (argc > 1 && strcmp(argv[1], "max") == 0)
        syscall(SYS_sched_get_priority_max, 0);
    else
        syscall(SYS_sched_get_priority_min, 0);
    return 0;
}
