/*
 * nbdock-init: a container's PID 1, from the supervisor's spawn to the user's command.
 *
 * Why C: this is the part of a start that runs in a freshly made process. Done in a forked
 * Python process, most of its time went to copy-on-write faults of the interpreter's heap
 * (every object touched is a refcount write), ~370 of them per start; runc keeps this part in C
 * (nsexec) for the same reason. The supervisor (Python) decides *what* to do and sends it as a
 * plan; this program only does it, in the order that keeps each step permitted, and reports a
 * failure as JSON {"message", "exit_code"} on the error fd (Docker's codes: 125 setup, 126 not
 * executable, 127 not found). Every policy list (masked paths, devices, mounts) comes from the
 * plan: the Python side (init.py, spec.py) stays the one source of truth.
 *
 * Usage: nbdock-init PLAN_FD SYNC_FD ERROR_FD   (stdout/stderr already the container's pipes)
 * The same program serves ``exec``: its plan names a running container to join (join.c) instead
 * of namespaces to make, a filesystem and a hostname, and SYNC_FD is -1.
 * Plan: records of (1-byte tag, u32 little-endian length, bytes). The first part, which ends
 * with a '.' record, is what every container needs (namespaces, lo); the rest, read until EOF,
 * is this container's. A pre-warmed init does the first part, then waits for the rest; EOF
 * with nothing more means the pool is retiring it.
 */
#include "init.h"

#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ------------------------------------------------------------------ main */
int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "nbdock-init: started by nbdock's supervisor, not by hand\n");
        return EXIT_SETUP_FAILED;
    }
    int plan_fd = atoi(argv[1]), sync_fd = atoi(argv[2]);
    error_fd = atoi(argv[3]);
    /* The supervisor ignores SIGPIPE, SIGINT, ...; ignored signals survive exec: reset them all,
     * and the mask, so the user's command starts with the defaults as under Docker. */
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = {0};
    for (int sig = 1; sig <= 64; sig++) /* the raw call: glibc's refuses its own 32 and 33 */
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Die with the supervisor: a SIGKILLed engine must not leave a running container behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* Not dumpable until exec: no one may ptrace us or read our memory while we hold host fds. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    uint32_t first_size;
    read_exact(plan_fd, (char *)&first_size, 4);
    char *first = malloc((size_t)first_size + 1);
    if (!first)
        _exit(EXIT_SETUP_FAILED);
    read_exact(plan_fd, first, first_size);
    parse(first, first_size);
    mark("I process started");
    if (plan.unshare_flags & ~CLONE_NEWCGROUP) {
        /* Every namespace but the cgroup one: its root is the cgroup we are in when it is made,
         * and the supervisor may still be moving us. Private propagation before any mount. */
        CHECK(unshare((int)(plan.unshare_flags & ~CLONE_NEWCGROUP)), "unshare", "namespaces");
        mark("I namespaces made");
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "making / private", "");
    }
    if (plan.lo_up)
        bring_up_loopback();

    size_t size;
    char *rest = read_to_eof(plan_fd, &size);
    close(plan_fd);
    if (size == 0)
        _exit(0); /* a pre-warmed init retired before it was given a container */
    rest = realloc(rest, size + 1);
    if (!rest)
        _exit(EXIT_SETUP_FAILED);
    parse(rest, size);
    mark("I plan received");

    if (plan.join_pid) /* exec: into a running container's namespaces and cgroup */
        join_container();
    if (plan.rootfs) { /* a new container; ``exec`` joins one whose filesystem exists */
        setup_filesystem();
        mark("I filesystem ready");
    }
    if (plan.hostname)
        CHECK(sethostname(plan.hostname, strlen(plan.hostname)), "sethostname", plan.hostname);
    if (sync_fd >= 0) {
        /* Only in our cgroup may we make the cgroup namespace and run the user's code. */
        char go = 0;
        while (read(sync_fd, &go, 1) < 0 && errno == EINTR) {
        }
        if (go != '1')
            _exit(EXIT_SETUP_FAILED);
        close(sync_fd);
    }
    if (plan.unshare_flags & CLONE_NEWCGROUP)
        CHECK(unshare(CLONE_NEWCGROUP), "unshare", "cgroup namespace");

    struct exec_user user;
    resolve_user(plan.user, &user);
    enter_workdir(plan.cwd ? plan.cwd : "/");
    drop_privileges(&user);
    load_seccomp(); /* last: the filter would refuse the mounts and unshare before it */
    /* Every fd above 2 close-on-exec (the error pipe included): nothing of the host leaks in. */
    CHECK(syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), "close_range", "");
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    mark("I exec");
    if (write(error_fd, "", 1) < 0) { /* the exec marker: the supervisor records "running" now */
    }
    exec_command(user.home);
}
