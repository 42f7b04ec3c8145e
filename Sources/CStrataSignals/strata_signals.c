#include "strata_signals.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t caught = 0;
static int catching = 0;

static void on_signal(int sig) {
    if (caught != 0) {
        /* Asked twice: stop now, the way the signal would have without a handler. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    caught = sig;
}

void strata_catch_interrupts(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    /* A signal the parent ignores stays ignored (nohup, a background job of a script), as shells do. */
    const int signals[3] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) {
        struct sigaction current;
        if (sigaction(signals[i], 0, &current) == 0 && current.sa_handler == SIG_IGN) continue;
        sigaction(signals[i], &action, 0);
    }
    /* A process started with these signals blocked (a parent's worker thread spawned it) would never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, 0);
    catching = 1;
}

void strata_release_interrupts(void) {
    const int signals[3] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) {
        struct sigaction current;
        if (sigaction(signals[i], 0, &current) == 0 && current.sa_handler == on_signal) signal(signals[i], SIG_DFL);
    }
    catching = 0;
}

int strata_catching_interrupts(void) {
    return catching;
}

int strata_interrupt_signal(void) {
    return caught;
}
