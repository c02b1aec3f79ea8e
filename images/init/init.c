/* dockyard-init: the minimal init that `run --init` puts in front of a container's command (Docker uses tini).
 *
 * It runs the command as its child, forwards the signals it receives to it, reaps every zombie that is
 * reparented to it (pid 1's duty), and exits with the command's status (128+N when killed by signal N).
 * Usage: dockyard-init [--] COMMAND [ARG...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--] COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t child = fork();
    if (child < 0) {
        perror("dockyard-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setpgid(0, 0);
        /* keep the terminal's foreground group pointing at the command, as tini does */
        if (isatty(STDIN_FILENO)) {
            signal(SIGTTOU, SIG_IGN);
            tcsetpgrp(STDIN_FILENO, getpid());
            signal(SIGTTOU, SIG_DFL);
        }
        execvp(argv[first], argv + first);
        fprintf(stderr, "dockyard-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    for (;;) {
        siginfo_t info;
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&all, &info, &tick);
        if (sig > 0 && sig != SIGCHLD) {
            kill(child, sig);
        }
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0) break;
            if (p == child) {
                /* the command is done: reap what is left, then leave with its status */
                while (waitpid(-1, NULL, WNOHANG) > 0) {}
                if (WIFEXITED(status)) return WEXITSTATUS(status);
                if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
                return 1;
            }
        }
    }
}
