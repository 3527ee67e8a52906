/* A root process dropping to nobody (65534) the way daemons do: setgroups, setgid, setuid.
 * Exit code names the step that failed: 1 setgroups, 2 setgid, 3 setuid. */
#include <grp.h>
#include <unistd.h>

int main(void) {
    gid_t none[1] = {65534};
    if (setgroups(1, none) != 0)
        return 1;
    if (setgid(65534) != 0)
        return 2;
    if (setuid(65534) != 0)
        return 3;
    return 0;
}
