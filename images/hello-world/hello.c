/* dockyard's hello-world: a static program with no libc dependencies beyond a syscall, printing a greeting. */
#include <unistd.h>
#include <string.h>

static const char msg[] =
"\n"
"Hello from dockyard!\n"
"This message shows that your installation appears to be working correctly.\n"
"\n"
"To generate this message, dockyard took the following steps:\n"
" 1. The dockyard command looked up the \"hello-world\" image in its local store.\n"
"    (It was made on this machine from the project's own source: no registry was needed.)\n"
" 2. dockyard created a new container from that image, on an overlay filesystem,\n"
"    in its own pid, mount, uts, ipc, net and cgroup namespaces.\n"
" 3. A small per-container monitor started the executable that produced the output\n"
"    you are currently reading, and recorded its exit status: there is no daemon.\n"
" 4. The monitor streamed that output to the dockyard command, which sent it\n"
"    to your terminal.\n"
"\n"
"To try something more ambitious, you can run a shell in a busybox container with:\n"
" $ ./scripts/mkimage-busybox.sh && dockyard run -it busybox sh\n"
"\n";

int main(void) {
    size_t off = 0, n = sizeof(msg) - 1;
    while (off < n) {
        ssize_t w = write(1, msg + off, n - off);
        if (w <= 0) return 1;
        off += (size_t)w;
    }
    return 0;
}
