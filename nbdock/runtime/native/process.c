/* nbdock-init: the last stretch, shared by a container's PID 1 and by exec into it: drop
 * privileges (bounding set, ambient, ids, capabilities, no_new_privs), load the seccomp filter,
 * exec the command the way execvpe does. */
#include "init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* ------------------------------------------------------------------ privileges */
static int setgroups_denied(void) {
    char buffer[16] = "";
    int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    return n > 0 && strncmp(buffer, "deny", 4) == 0;
}

void drop_privileges(const struct exec_user *user) {
    /* Bounding set and ambient first: dropping them needs CAP_SETPCAP, which we still have. */
    for (int bit = 0; bit <= plan.cap_last; bit++)
        if (!(plan.keep_caps & (1ULL << bit)) && prctl(PR_CAPBSET_DROP, bit, 0, 0, 0) < 0 && errno != EINVAL)
            fail(EXIT_SETUP_FAILED, "container init: dropping capability %d: %s", bit, strerror(errno));
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing", "ambient capabilities");
    /* KEEPCAPS so setuid to a non-root user does not fail half-way; capset then sets the sets. */
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl", "KEEPCAPS");
    if (setgroups((size_t)user->ngroups, user->groups) < 0 && !(errno == EPERM && setgroups_denied()))
        fail(EXIT_SETUP_FAILED, "container init: setgroups: %s", strerror(errno));
    if (setgid(user->gid) < 0 || setuid(user->uid) < 0) {
        if (errno == EINVAL)
            fail(EXIT_SETUP_FAILED,
                 "user %u:%u is not mapped in this rootless container's user namespace (only root is, "
                 "unless /etc/subuid and /etc/subgid give the caller a range and newuidmap/newgidmap "
                 "are installed)", (unsigned)user->uid, (unsigned)user->gid);
        fail(EXIT_SETUP_FAILED, "container init: setuid/setgid %u:%u: %s", (unsigned)user->uid,
             (unsigned)user->gid, strerror(errno));
    }
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (user->uid == 0) { /* a non-root user keeps only the bounding set, like Docker */
        for (int i = 0; i < 2; i++) {
            data[i].effective = data[i].permitted = (uint32_t)(plan.keep_caps >> (32 * i));
        }
    }
    CHECK(syscall(SYS_capset, &header, data), "capset", "");
    /* no_new_privs: setuid binaries and file caps cannot regain what we just dropped. */
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "NO_NEW_PRIVS");
}

void load_seccomp(void) {
    if (plan.seccomp == NULL)
        return;
    if (plan.seccomp_len == 0 || plan.seccomp_len % sizeof(struct sock_filter))
        fail(EXIT_SETUP_FAILED, "not a loadable classic BPF program (%zu bytes)", plan.seccomp_len);
    /* The record's bytes may sit at any offset: copy them to aligned memory. */
    struct sock_filter *filter = malloc(plan.seccomp_len);
    if (!filter)
        _exit(EXIT_SETUP_FAILED);
    memcpy(filter, plan.seccomp, plan.seccomp_len);
    struct sock_fprog program = {(unsigned short)(plan.seccomp_len / sizeof *filter), filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) < 0)
        fail(EXIT_SETUP_FAILED, "cannot load the seccomp filter: %s", strerror(errno));
}

/* ------------------------------------------------------------------ exec */
void exec_command(const char *home) {
    char **argv = calloc((size_t)plan.argv.count + 1, sizeof *argv);
    char **envp = calloc((size_t)plan.env.count + 2, sizeof *envp);
    if (!argv || !envp || plan.argv.count == 0)
        fail(EXIT_SETUP_FAILED, "container init: no command to run");
    const char *path = "/bin:/usr/bin"; /* Python's os.defpath, as before */
    int has_home = 0, n = 0;
    for (int i = 0; i < plan.argv.count; i++)
        argv[i] = (char *)plan.argv.items[i];
    for (int i = 0; i < plan.env.count; i++) {
        envp[n++] = (char *)plan.env.items[i];
        if (strncmp(plan.env.items[i], "PATH=", 5) == 0)
            path = plan.env.items[i] + 5;
        has_home |= strncmp(plan.env.items[i], "HOME=", 5) == 0;
    }
    char home_entry[1100];
    if (!has_home) {
        snprintf(home_entry, sizeof home_entry, "HOME=%s", home);
        envp[n++] = home_entry;
    }
    const char *file = argv[0];
    int error = 0;
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        error = errno;
    } else {
        /* Like execvpe: the first error other than "not there" wins, else the last one. */
        int saved = 0, last = ENOENT;
        char full[8192];
        const char *dir = path;
        for (;;) {
            const char *end = strchrnul(dir, ':');
            int len = (int)(end - dir);
            if (len == 0)
                snprintf(full, sizeof full, "%s", file);
            else
                snprintf(full, sizeof full, "%.*s/%s", len, dir, file);
            execve(full, argv, envp);
            last = errno;
            if (last != ENOENT && last != ENOTDIR && saved == 0)
                saved = last;
            if (!*end)
                break;
            dir = end + 1;
        }
        error = saved ? saved : last;
    }
    if (error == ENOENT)
        fail(EXIT_NOT_FOUND, "exec: \"%s\": executable file not found in $PATH", file);
    if (error == EACCES || error == EPERM)
        fail(EXIT_NOT_EXECUTABLE, "exec: \"%s\": permission denied", file);
    fail(error == ENOEXEC ? EXIT_NOT_EXECUTABLE : EXIT_NOT_FOUND, "exec: \"%s\": %s", file, strerror(error));
}

