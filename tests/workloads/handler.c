/*
 * Installs a SIGUSR1 handler, says "ready", and sleeps in short steps until the handler has run
 * or SECONDS have passed. The handler returns through rt_sigreturn, which the program never
 * calls itself: the kernel's signal frame points the handler's return at libc's restorer.
 *
 *   handler SECONDS   exit 0 when the handler ran, 3 when nobody signalled in time
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled = 1;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    puts("ready");
    fflush(stdout);
    for (double slept = 0; slept < seconds && !handled; slept += 0.05) {
        struct timespec step = {0, 50 * 1000 * 1000};
        nanosleep(&step, NULL);
    }
    if (!handled)
        return 3;
    puts("handled");
    return 0;
}
