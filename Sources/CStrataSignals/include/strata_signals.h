#ifndef STRATA_SIGNALS_H
#define STRATA_SIGNALS_H

/// Catches SIGINT, SIGTERM and SIGHUP: the first one is recorded (and returned by strata_interrupt_signal) so
/// that the command stops at its next check and cleans up; a second one ends the process at once, as if nothing
/// had been caught. The handler is installed without SA_RESTART, so a blocking read of a pipe or a wait for the
/// repository lock returns EINTR and the caller sees the request.
void strata_catch_interrupts(void);

/// Gives SIGINT, SIGTERM and SIGHUP back their default action (after a passphrase prompt in a command that does
/// not stop cleanly). A signal already caught stays recorded.
void strata_release_interrupts(void);

/// Whether the handler is installed.
int strata_catching_interrupts(void);

/// The first signal caught, or 0.
int strata_interrupt_signal(void);

#endif
