/* nbdock-init's shared declarations: the plan it was sent, and how it reports failure.
 * One program in six files, one concern each: plan.c (reading the plan, reporting), filesystem.c
 * (mounts up to pivot_root and masking), join.c (exec: entering a running container), user.c
 * (USER resolution), process.c (privileges, seccomp, exec), main.c (the order of it all). See main.c for why this is C. */
#ifndef NBDOCK_INIT_H
#define NBDOCK_INIT_H
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>

#define EXIT_SETUP_FAILED 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127
#define MAX_ITEMS 4096

struct list {
    const char *items[MAX_ITEMS];
    size_t lengths[MAX_ITEMS];
    int count;
};

struct plan {
    long unshare_flags;
    int lo_up;
    const char *rootfs, *upper, *work;
    struct list lowers;          /* top-most first, as overlayfs lists them */
    int userxattr, new_netns, can_mknod, readonly_rootfs;
    struct list devices;         /* "name\0major\0minor" */
    struct list etc_files;       /* "target\0host file\0content" */
    struct list volumes;         /* "type\0source\0target\0ro\0options" */
    struct list masked, readonly_paths;
    const char *hostname, *user, *cwd;
    unsigned long long keep_caps;
    int cap_last;
    const char *seccomp;
    size_t seccomp_len;
    struct list argv, env;
    const char *join_pid;        /* exec: the running container's PID 1, as the host sees it */
    struct list namespaces;      /* exec: which of its namespaces to join, in order */
    struct list cgroup_procs;    /* exec: its cgroup.procs files, one per hierarchy */
};

extern struct plan plan;
extern int error_fd;
extern int trace_fd;

/* plan.c */
void fail(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void mark(const char *label);
void read_exact(int fd, char *buffer, size_t length);
char *read_to_eof(int fd, size_t *size);
int parse(char *data, size_t size);
const char *field(const char *value, int index);
/* filesystem.c */
void setup_filesystem(void);
void enter_workdir(const char *cwd);
void bring_up_loopback(void);
/* join.c */
void join_container(void);
/* user.c */
struct exec_user {
    unsigned int uid, gid;
    unsigned int groups[256];
    int ngroups;
    char home[1024];
};
void resolve_user(const char *spec, struct exec_user *user);
/* process.c */
void drop_privileges(const struct exec_user *user);
void load_seccomp(void);
void exec_command(const char *home) __attribute__((noreturn));

/* A failed system call during setup: what we were doing, on what, and the kernel's reason. */
#define CHECK(call, what, path)                                                               \
    do {                                                                                       \
        if ((call) < 0)                                                                        \
            fail(EXIT_SETUP_FAILED, "container init: %s %s: %s", what, path, strerror(errno)); \
    } while (0)

#endif
