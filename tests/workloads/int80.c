/* A 64-bit program making one 32-bit syscall through int 0x80: getpid is 20 in the i386 table
 * (39 in x86_64's). It must be recorded as x86 getpid, and nothing extra under x86_64. */
#include <stdio.h>

int main(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret > 0 ? 0 : 1;
}
