/* nbdock-init: the container's filesystem, from the overlay root to pivot_root and masking.
 *
 * Every target inside the root is resolved as if the root were "/" (resolve_in_root): a hostile
 * image may plant /data -> /host/etc. In a user namespace (rootless) the overlay keeps its
 * metadata in user.* xattrs, devices are bound from the host (mknod is refused), and remounts
 * keep the locked nosuid/nodev/noexec flags. */
#include "init.h"

#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOCKABLE (MS_NOSUID | MS_NODEV | MS_NOEXEC)
#define LEGACY_OPTIONS_LIMIT 4000

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

void enter_workdir(const char *cwd) {
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

void setup_filesystem(void) {
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

void bring_up_loopback(void) {
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

