/* A workload for the drift gate. Without arguments it writes a temporary file. With "new" it
 * also does what a pull request might add: an anonymous memory file (memfd_create) and locking
 * more memory than RLIMIT_MEMLOCK allows (needs CAP_IPC_LOCK). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    /* Not mkstemp: glibc's name generator calls getrandom only sometimes, and the unchanged
     * workload must make the same syscalls every run. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/cinch-drift-%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return 1;
    close(fd);
    unlink(path);
    if (argc > 1 && strcmp(argv[1], "new") == 0) {
        int m = memfd_create("cinch-drift", 0);
        if (m < 0)
            return 2;
        close(m);
        struct rlimit small = {64 * 1024, 64 * 1024};
        if (setrlimit(RLIMIT_MEMLOCK, &small) != 0)
            return 3;
        size_t len = 1 << 20;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || mlock(p, len) != 0)
            return 4;
        munlock(p, len);
    }
    return 0;
}
