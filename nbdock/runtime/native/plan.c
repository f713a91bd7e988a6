/* nbdock-init: reading the plan the supervisor sends, and reporting a failure back.
 *
 * The plan is records of (1-byte tag, u32 little-endian length, bytes); see main.c for its two
 * parts. A failure is one JSON object {"message", "exit_code"} on the error fd, then _exit. */
#include "init.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int error_fd = -1;
int trace_fd = -1;

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

void fail(int code, const char *fmt, ...) {
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


void mark(const char *label) {
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
struct plan plan;

static void add(struct list *list, const char *value, size_t length) {
    if (list->count >= MAX_ITEMS)
        fail(EXIT_SETUP_FAILED, "container init: plan has more than %d entries of one kind", MAX_ITEMS);
    list->items[list->count] = value;
    list->lengths[list->count++] = length;
}

void read_exact(int fd, char *buffer, size_t length) {
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
char *read_to_eof(int fd, size_t *size) {
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
int parse(char *data, size_t size) {
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
        case 'J': plan.join_pid = value; break;
        case 'N': add(&plan.namespaces, value, length); break;
        case 'P': add(&plan.cgroup_procs, value, length); break;
        case 'a': add(&plan.argv, value, length); break;
        case 'v': add(&plan.env, value, length); break;
        default: fail(EXIT_SETUP_FAILED, "container init: unknown plan record '%c'", tag);
        }
    }
    return 0;
}

/* The i-th NUL-separated field of a composite record value. */
const char *field(const char *value, int index) {
    while (index-- > 0)
        value += strlen(value) + 1;
    return value;
}

