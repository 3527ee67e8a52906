/*
 * Asks the legacy x86_64 vsyscall page for the time (old static binaries do). The kernel
 * emulates the call (arch/x86/entry/vsyscall/vsyscall_64.c emulate_vsyscall()) and runs the
 * seccomp filter for `time` on it, but no sys_enter event fires, so no recording shows it.
 *
 * Exit 0 when the answer is within 5 s of clock_gettime's, 1 otherwise (printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef long (*time_fn)(long *);

int main(void) {
    time_fn vtime = (time_fn)0xffffffffff600400UL;
    long t = vtime(NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (t < 0 || labs(t - (long)now.tv_sec) > 5) {
        printf("vsyscall time() returned %ld, clock_gettime %ld\n", t, (long)now.tv_sec);
        return 1;
    }
    printf("vsyscall time() %ld\n", t);
    return 0;
}
