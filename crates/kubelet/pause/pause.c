/*
 * The first process of every pod sandbox, built into k3rs (crates/kubelet/build.rs
 * compiles it statically; the kubelet packs it as the default pause image).
 *
 * It holds the pod's namespaces open, reaps orphans that end up as its children (in a
 * shared PID namespace it is PID 1), and exits 0 when the runtime stops the sandbox.
 * Only async-signal-safe calls in the handlers.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    /* waitpid may change errno under the interrupted code's feet. */
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void on(int sig, void (*handler)(int), int flags) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    if (sigaction(sig, &action, NULL) != 0) {
        _exit(1);
    }
}

int main(void) {
    /* As PID 1 of a namespace, signals without a handler are ignored: stopping needs these. */
    on(SIGINT, stop, 0);
    on(SIGTERM, stop, 0);
    on(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART);
    for (;;) {
        pause();
    }
}
