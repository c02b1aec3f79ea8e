/* dockyard-exec: the last program the built-in runtime runs before a container's own.
 *
 * The runtime sets a container process up in Python (the host's interpreter) and must not execve the container's
 * program from there: while that process is the host's python, /proc/<pid>/exe and a `#!/proc/self/exe` script
 * lead to the host binary (CVE-2019-5736). Instead it copies this stub into a sealed memfd before pivot_root and
 * execveat()s the memfd; the stub then execve()s the container's program. From inside the container the only
 * binary ever reachable through /proc/self/exe is this sealed, private copy, which can do nothing but exec.
 *
 * Usage (by the runtime only): argv[0] = "dockyard-exec", argv[1] = the resolved path, argv[2..] = process.args.
 * Any other argv[0] (e.g. "/proc/self/exe" when a script names it as its interpreter) is refused, so that the
 * stub cannot loop on itself.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* one line on stderr: a b c d and a newline */
static void say(const char *a, const char *b, const char *c, const char *d) {
    const char *parts[] = {a, b, c, d, "\n"};
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(parts[i]);
        while (n > 0) {
            ssize_t k = write(2, parts[i], n);
            if (k <= 0) return;
            parts[i] += k;
            n -= (size_t)k;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[0], "dockyard-exec") != 0) {
        say("dockyard-exec: ", "not a container program", "", "");
        return 126;
    }
    execve(argv[1], argv + 2, environ);
    int e = errno;
    char reason[128];
    strncpy(reason, strerror(e), sizeof reason - 1);
    reason[sizeof reason - 1] = 0;
    if (reason[0] >= 'A' && reason[0] <= 'Z') reason[0] += 'a' - 'A';
    say("exec ", argv[1], ": ", reason);  /* the message the runtime's Python side writes for the same failure */
    return e == ENOENT ? 127 : 126;
}
