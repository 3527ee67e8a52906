/* Allocation-heavy and /proc-reading, as an ordinary service is: mmap, munmap, brk, and reads
 * of /proc/1/stat and every /proc/PID/status. None of it needs a capability, though the kernel
 * asks for CAP_SYS_ADMIN on every allocation and CAP_SYS_PTRACE on other processes' /proc. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void slurp(const char *path) {
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
}

int main(void) {
    for (int i = 0; i < 200; i++) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        memset(p, i, 4096);
        munmap(p, 1 << 20);
        void *b = sbrk(1 << 16);
        if (b == (void *)-1)
            return 1;
        sbrk(-(1 << 16));
    }
    slurp("/proc/1/stat");
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        slurp(path);
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        slurp(path);
    }
    return 0;
}
