/* nbdock-init: exec into a running container — join its namespaces and cgroup, then fork, so the
 * command runs in its PID namespace; this process waits and exits with the command's status.
 *
 * Why here and not in the caller: the caller may be a notebook kernel holding gigabytes and
 * running threads; forking it copied its page tables and ran Python in a child that could
 * inherit another thread's lock half-held. The caller now only posix_spawns this program. */
#include "init.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_NAMESPACES 8

void join_container(void) {
    int fds[MAX_NAMESPACES];
    char path[512];
    if (plan.namespaces.count > MAX_NAMESPACES)
        fail(EXIT_SETUP_FAILED, "container init: too many namespaces to join");
    /* Every namespace file first: once in the container's mount namespace, /proc is its own. */
    for (int i = 0; i < plan.namespaces.count; i++) {
        snprintf(path, sizeof path, "/proc/%s/ns/%s", plan.join_pid, plan.namespaces.items[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fds[i], "open", path);
    }
    /* The cgroup before the namespaces: its files are the host's. "0" is this process. */
    for (int i = 0; i < plan.cgroup_procs.count; i++) {
        int fd = open(plan.cgroup_procs.items[i], O_WRONLY | O_CLOEXEC);
        CHECK(fd, "open", plan.cgroup_procs.items[i]);
        CHECK(write(fd, "0", 1), "join", plan.cgroup_procs.items[i]);
        close(fd);
    }
    /* In the order that keeps each step permitted: the user namespace (rootless) first grants
     * the capabilities the others need; mount last. */
    for (int i = 0; i < plan.namespaces.count; i++) {
        CHECK(setns(fds[i], 0), "setns", plan.namespaces.items[i]);
        close(fds[i]);
    }
    pid_t child = fork(); /* setns(pid) only places our children in the container's PID namespace */
    CHECK(child, "fork", "");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        return; /* on to the user, privileges, seccomp and exec, as PID 1 did */
    }
    close(error_fd); /* the child reports; its exec closes the last copy: EOF means started */
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
