/*
 * Argument-sensitive syscalls, for the tests of argument rules. Always: forks once (clone
 * without namespace flags), opens an AF_UNIX and an AF_INET socket, queries the personality
 * (0xffffffff) and uses termios on a new pseudo-terminal (TCGETS, TCSETS, TIOCGWINSZ). Then each
 * extra argument tries one more call and prints its outcome, `NAME: ok` or `NAME: errno N`:
 *
 *   clone-newuser     clone(CLONE_NEWUSER | SIGCHLD)
 *   socket:N          socket(N, SOCK_DGRAM or SOCK_RAW for 17, 0)
 *   tiocsti           ioctl(TIOCSTI) on the pseudo-terminal
 *   personality:N     personality(N), then back to what it was
 *
 * Exit 0 unless the base calls fail (exit 2, with the failure printed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void outcome(const char *what, long rc) {
    if (rc < 0)
        printf("%s: errno %d\n", what, errno);
    else
        printf("%s: ok\n", what);
    fflush(stdout);
}

static int base_failed(const char *what) {
    printf("base %s failed: %s\n", what, strerror(errno));
    return 2;
}

int main(int argc, char **argv) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) < 0)
        return base_failed("fork");
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    int i = socket(AF_INET, SOCK_STREAM, 0);
    if (u < 0 || i < 0)
        return base_failed("socket");
    close(u);
    close(i);
    int persona = personality(0xffffffff);
    if (persona < 0)
        return base_failed("personality");
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
        return base_failed("posix_openpt");
    int pts = open(ptsname(master), O_RDWR | O_NOCTTY);
    struct termios t;
    struct winsize ws;
    if (pts < 0 || tcgetattr(pts, &t) < 0 || tcsetattr(pts, TCSANOW, &t) < 0 ||
        ioctl(pts, TIOCGWINSZ, &ws) < 0)
        return base_failed("termios");
    /* The recorded run writes too: the extra calls' outcomes need write. */
    outcome("base", 0);
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "clone-newuser") == 0) {
            long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
            if (rc == 0)
                _exit(0);
            if (rc > 0)
                waitpid((pid_t)rc, NULL, 0);
            outcome(arg, rc);
        } else if (strncmp(arg, "socket:", 7) == 0) {
            int family = atoi(arg + 7);
            int fd = socket(family, family == AF_PACKET ? SOCK_RAW : SOCK_DGRAM, 0);
            outcome(arg, fd);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(arg, "tiocsti") == 0) {
            char c = 'x';
            outcome(arg, ioctl(pts, TIOCSTI, &c));
        } else if (strncmp(arg, "personality:", 12) == 0) {
            long rc = personality(strtoul(arg + 12, NULL, 0));
            outcome(arg, rc);
            if (rc >= 0)
                personality(persona);
        } else {
            printf("unknown argument %s\n", arg);
            return 2;
        }
    }
    return 0;
}
