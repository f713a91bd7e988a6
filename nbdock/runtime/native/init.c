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
 * The same program serves ``exec``: joined to a running container's namespaces by the caller, it
 * gets a plan without namespaces, filesystem or hostname, and SYNC_FD -1.
 * Plan: records of (1-byte tag, u32 little-endian length, bytes). The first part, which ends
 * with a '.' record, is what every container needs (namespaces, lo); the rest, read until EOF,
 * is this container's. A pre-warmed init does the first part, then waits for the rest; EOF
 * with nothing more means the pool is retiring it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#define EXIT_SETUP_FAILED 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127
#define MAX_ITEMS 4096
#define LOCKABLE (MS_NOSUID | MS_NODEV | MS_NOEXEC)
#define LEGACY_OPTIONS_LIMIT 4000

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static int error_fd = -1;
static int trace_fd = -1;

/* ------------------------------------------------------------------ reporting */
static void json_string(char *out, size_t size, const char *text) {
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 8 < size; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void __attribute__((noreturn, format(printf, 2, 3))) fail(int code, const char *fmt, ...) {
    char message[2048], quoted[4200], payload[4400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    json_string(quoted, sizeof quoted, message);
    int len = snprintf(payload, sizeof payload, "{\"message\": %s, \"exit_code\": %d}", quoted, code);
    if (error_fd >= 0 && write(error_fd, payload, (size_t)len) < 0) {
        /* nobody to tell: the exit code still says it */
    }
    _exit(code);
}

/* A failed system call during setup: what we were doing, on what, and the kernel's reason. */
#define CHECK(call, what, path)                                                               \
    do {                                                                                       \
        if ((call) < 0)                                                                        \
            fail(EXIT_SETUP_FAILED, "container init: %s %s: %s", what, path, strerror(errno)); \
    } while (0)

static void mark(const char *label) {
    if (trace_fd < 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char line[256];
    int len = snprintf(line, sizeof line, "%d %lld %s\n", getpid(),
                       (long long)now.tv_sec * 1000000000LL + now.tv_nsec, label);
    if (write(trace_fd, line, (size_t)len) < 0) {
        /* tracing is best effort */
    }
}

/* ------------------------------------------------------------------ the plan */
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
};

static struct plan plan;

static void add(struct list *list, const char *value, size_t length) {
    if (list->count >= MAX_ITEMS)
        fail(EXIT_SETUP_FAILED, "container init: plan has more than %d entries of one kind", MAX_ITEMS);
    list->items[list->count] = value;
    list->lengths[list->count++] = length;
}

static void read_exact(int fd, char *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = read(fd, buffer + done, length - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the supervisor went away (or retired a pre-warmed init) */
        done += (size_t)n;
    }
}

/* Every value gets a NUL after it (the records are copied into a buffer with room for it). */
static char *read_to_eof(int fd, size_t *size) {
    size_t capacity = 1 << 16, used = 0;
    char *buffer = malloc(capacity);
    for (;;) {
        if (buffer == NULL)
            fail(EXIT_SETUP_FAILED, "container init: out of memory reading the plan");
        if (used == capacity)
            buffer = realloc(buffer, capacity *= 2);
        if (buffer == NULL)
            continue;
        ssize_t n = read(fd, buffer + used, capacity - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(EXIT_SETUP_FAILED, "container init: reading the plan: %s", strerror(errno));
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *size = used;
    return buffer;
}

static long number(const char *text) { return strtol(text, NULL, 10); }

/* Parse records in place: each value is moved one byte left over its header, then NUL-ended. */
static int parse(char *data, size_t size) {
    size_t pos = 0;
    while (pos + 5 <= size) {
        char tag = data[pos];
        uint32_t length;
        memcpy(&length, data + pos + 1, 4);
        if (pos + 5 + length > size)
            fail(EXIT_SETUP_FAILED, "container init: truncated plan");
        char *value = data + pos;
        memmove(value, data + pos + 5, length);
        value[length] = '\0';
        pos += 5 + length;
        switch (tag) {
        case '.': return 1; /* end of the first part */
        case 'U': plan.unshare_flags = number(value); break;
        case 'L': plan.lo_up = 1; break;
        case 'T': trace_fd = open(value, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600); break;
        case 'R': plan.rootfs = value; break;
        case 'u': plan.upper = value; break;
        case 'w': plan.work = value; break;
        case 'l': add(&plan.lowers, value, length); break;
        case 'x': plan.userxattr = 1; break;
        case 'n': plan.new_netns = 1; break;
        case 'k': plan.can_mknod = 1; break;
        case 'd': add(&plan.devices, value, length); break;
        case 'e': add(&plan.etc_files, value, length); break;
        case 'V': add(&plan.volumes, value, length); break;
        case 'm': add(&plan.masked, value, length); break;
        case 'r': add(&plan.readonly_paths, value, length); break;
        case 'X': plan.readonly_rootfs = 1; break;
        case 'H': plan.hostname = value; break;
        case 'G': plan.user = value; break;
        case 'W': plan.cwd = value; break;
        case 'K': plan.keep_caps = strtoull(value, NULL, 10); break;
        case 'Z': plan.cap_last = (int)number(value); break;
        case 'S': plan.seccomp = value; plan.seccomp_len = length; break;
        case 'a': add(&plan.argv, value, length); break;
        case 'v': add(&plan.env, value, length); break;
        default: fail(EXIT_SETUP_FAILED, "container init: unknown plan record '%c'", tag);
        }
    }
    return 0;
}

/* The i-th NUL-separated field of a composite record value. */
static const char *field(const char *value, int index) {
    while (index-- > 0)
        value += strlen(value) + 1;
    return value;
}

/* ------------------------------------------------------------------ paths */
static int exists(const char *path) { struct stat st; return lstat(path, &st) == 0; }
static int exists_follow(const char *path) { struct stat st; return stat(path, &st) == 0; }
static int is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

/* Join ``path`` under ``root`` resolving symlinks as if ``root`` were "/" (like securejoin):
 * a hostile image's /etc -> /host/etc cannot lead a mount out of the container's root. */
static void resolve_in_root(const char *root, const char *path, char *out, size_t size) {
    char pending[8192], resolved[4096] = "";
    snprintf(pending, sizeof pending, "%s", path);
    int hops = 0;
    char *rest = pending;
    while (*rest) {
        while (*rest == '/')
            rest++;
        if (!*rest)
            break;
        char *end = strchrnul(rest, '/');
        char part[256];
        size_t len = (size_t)(end - rest);
        if (len >= sizeof part)
            fail(EXIT_SETUP_FAILED, "container init: path component too long in %s", path);
        memcpy(part, rest, len);
        part[len] = '\0';
        rest = end;
        if (strcmp(part, ".") == 0)
            continue;
        if (strcmp(part, "..") == 0) {
            char *slash = strrchr(resolved, '/');
            if (slash)
                *slash = '\0';
            continue;
        }
        char candidate[8192];
        snprintf(candidate, sizeof candidate, "%s%s/%s", root, resolved, part);
        struct stat st;
        if (lstat(candidate, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++hops > 40)
                fail(EXIT_SETUP_FAILED, "container init: too many symlinks in %s", path);
            char link[4096];
            ssize_t n = readlink(candidate, link, sizeof link - 1);
            CHECK(n, "readlink", candidate);
            link[n] = '\0';
            if (link[0] == '/')
                resolved[0] = '\0';
            char joined[8192];
            snprintf(joined, sizeof joined, "%s/%s", link, rest);
            snprintf(pending, sizeof pending, "%s", joined);
            rest = pending;
            continue;
        }
        size_t used = strlen(resolved);
        snprintf(resolved + used, sizeof resolved - used, "/%s", part);
    }
    snprintf(out, size, "%s%s", root, resolved);
}

static void make_dirs(const char *path, mode_t mode) {
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *p = buffer + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buffer, mode) < 0 && errno != EEXIST)
            fail(EXIT_SETUP_FAILED, "container init: mkdir %s: %s", buffer, strerror(errno));
        *p = '/';
    }
    if (mkdir(buffer, mode) < 0 && errno != EEXIST)
        fail(EXIT_SETUP_FAILED, "container init: mkdir %s: %s", buffer, strerror(errno));
}

static void ensure_target(const char *path, int directory) {
    if (exists(path))
        return;
    if (directory) {
        make_dirs(path, 0755);
        return;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        make_dirs(parent, 0755);
    }
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd, "create", path);
    close(fd);
}

/* ------------------------------------------------------------------ mounts */
static void do_mount(const char *source, const char *target, const char *type, unsigned long flags,
                     const char *data) {
    if (mount(source, target, type, flags, data) < 0)
        fail(EXIT_SETUP_FAILED, "container init: mount %s on %s: %s", source ? source : type ? type : "",
             target, strerror(errno));
}

/* Read-only, keeping the mount's nosuid/nodev/noexec: in a user namespace they are locked and a
 * remount that drops them fails with EPERM. */
static void remount_readonly(const char *target, unsigned long extra) {
    struct statvfs info;
    CHECK(statvfs(target, &info), "statvfs", target);
    do_mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | (info.f_flag & LOCKABLE) | extra, NULL);
}

static int fsconfig_string(int fd, const char *key, const char *value) {
    return (int)syscall(SYS_fsconfig, fd, 1 /* FSCONFIG_SET_STRING */, key, value, 0);
}

static void mount_overlay(void) {
    if (plan.lowers.count == 0)
        fail(EXIT_SETUP_FAILED, "container init: an overlay root needs at least one layer");
    size_t total = 64 + strlen(plan.upper) + strlen(plan.work);
    for (int i = 0; i < plan.lowers.count; i++)
        total += plan.lowers.lengths[i] + 1;
    if (total < LEGACY_OPTIONS_LIMIT) {
        char options[LEGACY_OPTIONS_LIMIT + 64] = "lowerdir=";
        for (int i = 0; i < plan.lowers.count; i++) {
            if (i)
                strcat(options, ":");
            strcat(options, plan.lowers.items[i]);
        }
        size_t used = strlen(options);
        snprintf(options + used, sizeof options - used, ",upperdir=%s,workdir=%s%s", plan.upper,
                 plan.work, plan.userxattr ? ",userxattr" : "");
        do_mount("overlay", plan.rootfs, "overlay", 0, options);
        return;
    }
    /* More layers than one page of mount(2) options holds: the new mount API, one layer each. */
    int fd = (int)syscall(SYS_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
    CHECK(fd, "fsopen", "overlay");
    for (int i = 0; i < plan.lowers.count; i++)
        CHECK(fsconfig_string(fd, "lowerdir+", plan.lowers.items[i]), "overlay lowerdir+", plan.lowers.items[i]);
    CHECK(fsconfig_string(fd, "upperdir", plan.upper), "overlay upperdir", plan.upper);
    CHECK(fsconfig_string(fd, "workdir", plan.work), "overlay workdir", plan.work);
    if (plan.userxattr)
        CHECK(syscall(SYS_fsconfig, fd, 0 /* FSCONFIG_SET_FLAG */, "userxattr", NULL, 0), "overlay", "userxattr");
    CHECK(syscall(SYS_fsconfig, fd, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0), "overlay create", plan.rootfs);
    int mount_fd = (int)syscall(SYS_fsmount, fd, 1 /* FSMOUNT_CLOEXEC */, 0);
    CHECK(mount_fd, "fsmount", plan.rootfs);
    CHECK(syscall(SYS_move_mount, mount_fd, "", AT_FDCWD, plan.rootfs, 4 /* MOVE_MOUNT_F_EMPTY_PATH */),
          "move_mount", plan.rootfs);
    close(mount_fd);
    close(fd);
}

static void mount_proc_sys(void) {
    char path[4096];
    resolve_in_root(plan.rootfs, "/proc", path, sizeof path);
    ensure_target(path, 1);
    do_mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    resolve_in_root(plan.rootfs, "/sys", path, sizeof path);
    ensure_target(path, 1);
    unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
    if (plan.new_netns) {
        do_mount("sysfs", path, "sysfs", flags, NULL);
    } else {
        /* A sysfs instance belongs to a network namespace; with the host's, bind the host's. */
        do_mount("/sys", path, NULL, MS_BIND | MS_REC, NULL);
        remount_readonly(path, flags & ~(unsigned long)MS_RDONLY);
    }
}

static void dev_path(char *out, size_t size, const char *dev, const char *name) {
    snprintf(out, size, "%s/%s", dev, name);
}

static void mount_dev(void) {
    char dev[4096], node[4200];
    resolve_in_root(plan.rootfs, "/dev", dev, sizeof dev);
    ensure_target(dev, 1);
    do_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    mode_t old_umask = umask(0);
    for (int i = 0; i < plan.devices.count; i++) {
        const char *name = plan.devices.items[i];
        dev_path(node, sizeof node, dev, name);
        if (plan.can_mknod) {
            dev_t number = makedev((unsigned)atoi(field(name, 1)), (unsigned)atoi(field(name, 2)));
            CHECK(mknod(node, 0666 | S_IFCHR, number), "mknod", node);
        } else { /* in a user namespace mknod is refused: bind the host's node instead */
            char host[256];
            snprintf(host, sizeof host, "/dev/%s", name);
            ensure_target(node, 0);
            do_mount(host, node, NULL, MS_BIND, NULL);
        }
    }
    dev_path(node, sizeof node, dev, "pts");
    CHECK(mkdir(node, 0755), "mkdir", node);
    do_mount("devpts", node, "devpts", MS_NOSUID | MS_NOEXEC,
             plan.can_mknod ? "newinstance,ptmxmode=0666,mode=0620,gid=5" : "newinstance,ptmxmode=0666,mode=0620");
    dev_path(node, sizeof node, dev, "ptmx");
    CHECK(symlink("pts/ptmx", node), "symlink", node);
    dev_path(node, sizeof node, dev, "shm");
    CHECK(mkdir(node, 01777), "mkdir", node);
    do_mount("shm", node, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    dev_path(node, sizeof node, dev, "mqueue");
    CHECK(mkdir(node, 0755), "mkdir", node);
    do_mount("mqueue", node, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    umask(old_umask);
    static const char *const links[][2] = {
        {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        dev_path(node, sizeof node, dev, links[i][0]);
        CHECK(symlink(links[i][1], node), "symlink", node);
    }
}

/* Docker's generated /etc files: written beside the container's other files (so they outlive
 * this mount namespace, as Docker's do), then bound over the image's. */
static void write_file(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    CHECK(fd, "create", path);
    size_t length = strlen(content), done = 0;
    while (done < length) {
        ssize_t n = write(fd, content + done, length - done);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n, "write", path);
        done += (size_t)n;
    }
    close(fd);
}

static void bind_etc_files(void) {
    for (int i = 0; i < plan.etc_files.count; i++) {
        const char *target = plan.etc_files.items[i], *source = field(target, 1);
        char folder[4096];
        snprintf(folder, sizeof folder, "%s", source);
        char *cut = strrchr(folder, '/');
        if (cut)
            *cut = '\0';
        if (mkdir(folder, 0755) < 0 && errno != EEXIST)
            fail(EXIT_SETUP_FAILED, "container init: mkdir %s: %s", folder, strerror(errno));
        write_file(source, field(target, 2));
    }
    for (int i = 0; i < plan.etc_files.count; i++) {
        const char *target = plan.etc_files.items[i], *source = field(target, 1);
        char path[4096], parent[4096];
        resolve_in_root(plan.rootfs, target, path, sizeof path);
        snprintf(parent, sizeof parent, "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash)
            *slash = '\0';
        if (!is_dir(parent))
            continue; /* an image without /etc gets none */
        ensure_target(path, 0);
        do_mount(source, path, NULL, MS_BIND, NULL);
    }
}

/* -v binds and --tmpfs mounts, in order, so a later mount may nest in an earlier one. */
static void mount_volumes(void) {
    for (int i = 0; i < plan.volumes.count; i++) {
        const char *record = plan.volumes.items[i];
        const char *type = field(record, 0), *source = field(record, 1), *target = field(record, 2);
        int readonly = field(record, 3)[0] == '1';
        const char *options = field(record, 4);
        char path[4096];
        resolve_in_root(plan.rootfs, target, path, sizeof path);
        if (strcmp(type, "tmpfs") == 0) {
            ensure_target(path, 1);
            unsigned long flags = MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
            do_mount("tmpfs", path, "tmpfs", flags, *options ? options : "mode=1777");
            continue;
        }
        ensure_target(path, is_dir(source));
        do_mount(source, path, NULL, MS_BIND | MS_REC, NULL);
        if (readonly)
            remount_readonly(path, 0);
    }
}

/* pivot_root(".", ".") stacks the old root on the new one; one lazy unmount of "." drops it. */
static void pivot_into(void) {
    CHECK(chdir(plan.rootfs), "chdir", plan.rootfs);
    CHECK(syscall(SYS_pivot_root, ".", "."), "pivot_root", plan.rootfs);
    CHECK(umount2(".", MNT_DETACH), "umount", "old root");
    CHECK(chdir("/"), "chdir", "/");
}

static void mask_paths(void) {
    for (int i = 0; i < plan.masked.count; i++) {
        const char *path = plan.masked.items[i];
        int rc = 0;
        if (is_dir(path))
            rc = mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL);
        else if (exists_follow(path))
            rc = mount("/dev/null", path, NULL, MS_BIND, NULL);
        if (rc < 0 && errno != ENOENT)
            fail(EXIT_SETUP_FAILED, "container init: masking %s: %s", path, strerror(errno));
    }
    for (int i = 0; i < plan.readonly_paths.count; i++) {
        const char *path = plan.readonly_paths.items[i];
        if (!exists_follow(path))
            continue;
        do_mount(path, path, NULL, MS_BIND | MS_REC, NULL);
        remount_readonly(path, LOCKABLE);
    }
}

static void enter_workdir(const char *cwd) {
    if (!is_dir(cwd)) {
        char buffer[4096];
        snprintf(buffer, sizeof buffer, "%s", cwd);
        for (char *p = buffer + 1;; p++) {
            char saved = *p;
            if (saved != '/' && saved != '\0')
                continue;
            *p = '\0';
            if (mkdir(buffer, 0755) < 0 && errno != EEXIST)
                fail(EXIT_SETUP_FAILED, "cannot create working directory %s: %s", cwd, strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
    if (chdir(cwd) < 0)
        fail(EXIT_SETUP_FAILED, "cannot create working directory %s: %s", cwd, strerror(errno));
}

static void setup_filesystem(void) {
    mount_overlay();
    mount_proc_sys();
    mount_dev();
    bind_etc_files();
    mount_volumes();
    pivot_into();
    mask_paths();
    if (plan.readonly_rootfs) {
        /* Docker creates a missing working directory before the root turns read-only. */
        enter_workdir(plan.cwd);
        remount_readonly("/", 0);
    }
}

static void bring_up_loopback(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(sock, "socket", "lo");
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strcpy(request.ifr_name, "lo");
    CHECK(ioctl(sock, SIOCGIFFLAGS, &request), "SIOCGIFFLAGS", "lo");
    request.ifr_flags |= IFF_UP;
    CHECK(ioctl(sock, SIOCSIFFLAGS, &request), "SIOCSIFFLAGS", "lo");
    close(sock);
}

/* ------------------------------------------------------------------ the user */
struct exec_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[256];
    int ngroups;
    char home[1024];
};

static int all_digits(const char *text) {
    if (!*text)
        return 0;
    for (; *text; text++)
        if (*text < '0' || *text > '9')
            return 0;
    return 1;
}

/* Split a line of /etc/passwd or /etc/group on ':' (in place); the number of fields. */
static int split_fields(char *line, char **fields, int max) {
    int count = 0;
    fields[count++] = line;
    for (char *p = line; *p && count < max; p++)
        if (*p == ':') {
            *p = '\0';
            fields[count++] = p + 1;
        }
    return count;
}

static char *read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t size = 0;
    char *data = read_to_eof(fd, &size);
    close(fd);
    data = realloc(data, size + 1);
    if (data)
        data[size] = '\0';
    return data;
}

/* Next non-blank line of a table, or NULL; ``cursor`` walks the buffer. */
static char *next_line(char **cursor) {
    while (*cursor && **cursor) {
        char *line = *cursor, *end = strchr(line, '\n');
        if (end) {
            *end = '\0';
            *cursor = end + 1;
        } else {
            *cursor = line + strlen(line);
        }
        for (char *p = line; *p; p++)
            if (*p != ' ' && *p != '\t' && *p != '\r')
                return line;
    }
    return NULL;
}

static char *copy(const char *text) { char *c = strdup(text); if (!c) _exit(EXIT_SETUP_FAILED); return c; }

/* Docker's USER name[:group] against the container's own /etc/passwd and /etc/group (we are
 * past pivot_root: these are the image's files). Numeric ids need no entry. */
static void resolve_user(const char *spec, struct exec_user *user) {
    char *user_part = copy(spec && *spec ? spec : "0"), *group_part = strchr(user_part, ':');
    if (group_part)
        *group_part++ = '\0';
    else
        group_part = "";
    char *passwd = read_file("/etc/passwd"), *groups_table = read_file("/etc/group");
    int found = 0;
    user->gid = 0;
    snprintf(user->home, sizeof user->home, "/");
    char *fields[16], *cursor = passwd ? copy(passwd) : NULL, *line;
    while ((line = next_line(&cursor)) != NULL) {
        if (split_fields(line, fields, 16) < 7)
            continue;
        if (strcmp(fields[0], user_part) == 0 || (all_digits(user_part) && strcmp(fields[2], user_part) == 0)) {
            user->uid = (uid_t)atol(fields[2]);
            user->gid = (gid_t)atol(fields[3]);
            snprintf(user->home, sizeof user->home, "%s", *fields[5] ? fields[5] : "/");
            found = 1;
            break;
        }
    }
    if (!found) {
        if (!all_digits(user_part))
            fail(EXIT_SETUP_FAILED, "unable to find user %s: no matching entries in passwd file", user_part);
        user->uid = (uid_t)atol(user_part);
        snprintf(user->home, sizeof user->home, "%s", user->uid ? "/" : "/root");
    }
    if (*group_part) {
        int group_found = 0;
        cursor = groups_table ? copy(groups_table) : NULL;
        while ((line = next_line(&cursor)) != NULL) {
            if (split_fields(line, fields, 16) < 3)
                continue;
            if (strcmp(fields[0], group_part) == 0 || strcmp(fields[2], group_part) == 0) {
                user->gid = (gid_t)atol(fields[2]);
                group_found = 1;
                break;
            }
        }
        if (!group_found) {
            if (!all_digits(group_part))
                fail(EXIT_SETUP_FAILED, "unable to find group %s: no matching entries in group file", group_part);
            user->gid = (gid_t)atol(group_part);
        }
    }
    /* The user's name, for supplementary groups: its passwd entry's, else what was asked. */
    char uid_text[32], *name = user_part;
    snprintf(uid_text, sizeof uid_text, "%u", (unsigned)user->uid);
    cursor = passwd ? copy(passwd) : NULL;
    while ((line = next_line(&cursor)) != NULL) {
        if (split_fields(line, fields, 16) >= 3 && strcmp(fields[2], uid_text) == 0) {
            name = copy(fields[0]);
            break;
        }
    }
    user->ngroups = 0;
    user->groups[user->ngroups++] = user->gid;
    cursor = (groups_table && !*group_part) ? copy(groups_table) : NULL;
    while ((line = next_line(&cursor)) != NULL) {
        if (split_fields(line, fields, 16) < 4 || !all_digits(fields[2]))
            continue;
        for (char *member = strtok(fields[3], ","); member; member = strtok(NULL, ","))
            if (strcmp(member, name) == 0) {
                gid_t gid = (gid_t)atol(fields[2]);
                int seen = 0;
                for (int i = 0; i < user->ngroups; i++)
                    seen |= user->groups[i] == gid;
                if (!seen && user->ngroups < 256)
                    user->groups[user->ngroups++] = gid;
                break;
            }
    }
    for (int i = 1; i < user->ngroups; i++) /* sorted, as Docker (and the Python side) report them */
        for (int j = i; j > 0 && user->groups[j - 1] > user->groups[j]; j--) {
            gid_t t = user->groups[j];
            user->groups[j] = user->groups[j - 1];
            user->groups[j - 1] = t;
        }
}

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

static void drop_privileges(const struct exec_user *user) {
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

static void load_seccomp(void) {
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
static void __attribute__((noreturn)) exec_command(const char *home) {
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
