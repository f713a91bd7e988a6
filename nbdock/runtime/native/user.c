/* nbdock-init: Docker's USER name[:group], resolved against the image's own /etc/passwd and
 * /etc/group (we are past pivot_root: these are the image's files, never the host's). */
#include "init.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the user */

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
void resolve_user(const char *spec, struct exec_user *user) {
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
            user->uid = (unsigned int)atol(fields[2]);
            user->gid = (unsigned int)atol(fields[3]);
            snprintf(user->home, sizeof user->home, "%s", *fields[5] ? fields[5] : "/");
            found = 1;
            break;
        }
    }
    if (!found) {
        if (!all_digits(user_part))
            fail(EXIT_SETUP_FAILED, "unable to find user %s: no matching entries in passwd file", user_part);
        user->uid = (unsigned int)atol(user_part);
        snprintf(user->home, sizeof user->home, "%s", user->uid ? "/" : "/root");
    }
    if (*group_part) {
        int group_found = 0;
        cursor = groups_table ? copy(groups_table) : NULL;
        while ((line = next_line(&cursor)) != NULL) {
            if (split_fields(line, fields, 16) < 3)
                continue;
            if (strcmp(fields[0], group_part) == 0 || strcmp(fields[2], group_part) == 0) {
                user->gid = (unsigned int)atol(fields[2]);
                group_found = 1;
                break;
            }
        }
        if (!group_found) {
            if (!all_digits(group_part))
                fail(EXIT_SETUP_FAILED, "unable to find group %s: no matching entries in group file", group_part);
            user->gid = (unsigned int)atol(group_part);
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
                unsigned int gid = (unsigned int)atol(fields[2]);
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
            unsigned int t = user->groups[j];
            user->groups[j] = user->groups[j - 1];
            user->groups[j - 1] = t;
        }
}

