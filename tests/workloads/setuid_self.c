/* setuid(getuid()): what a program that was started set-user-ID does to drop the privilege for
 * good, and what some do anyway. As root the kernel asks for CAP_SETUID first
 * (kernel/sys.c, __sys_setuid) and, refused, still succeeds: the id is already the real one.
 * Exit 1 when the call fails. */
#include <unistd.h>

int main(void) {
    return setuid(getuid()) != 0;
}
