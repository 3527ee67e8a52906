/* Execs another program: the recording must follow into it. */
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    syscall(SYS_sched_get_priority_min, 0);
    char *argv[] = {"true", NULL};
    char *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    return 127;
}
