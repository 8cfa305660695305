/*
 * Corners of the PV ABI a Debian guest's userspace reaches (issue 18), as a
 * user would meet them:
 *   watch   a ptrace hardware watchpoint (DR0, write, 4 bytes) on a variable
 *           the child writes 3 times: SIGTRAP 3 times, DR6 says DR0;
 *   break   a ptrace hardware breakpoint (DR1, execute) on a function the
 *           child calls twice: SIGTRAP twice, and the child goes on (RF);
 *   ioperm  ioperm() on a port no device answers, then inb: all ones (Xen
 *           gives a domU no device; without the bitmap it is SIGSEGV);
 *   iopl    iopl(3), then inb on another port: all ones.
 * Prints "ABITEST: NAME ok ..." or "ABITEST: NAME FAIL ..." per test.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int watched;

__attribute__((noinline)) static void target(void)
{
    __asm__ volatile("" ::: "memory");
}

#define DR_OFF(n) (offsetof(struct user, u_debugreg) + (n) * sizeof(long))

/* Run `child` traced with DRn = addr and DR7 = dr7; count its SIGTRAPs. */
static int traced(void (*child)(void), int n, unsigned long addr, unsigned long dr7, unsigned long *dr6)
{
    int st, traps = 0;
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        child();
        _exit(0);
    }
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
        return -1;
    if (ptrace(PTRACE_POKEUSER, pid, DR_OFF(n), addr) || ptrace(PTRACE_POKEUSER, pid, DR_OFF(7), dr7)) {
        perror("ABITEST: POKEUSER");
        kill(pid, SIGKILL);
        return -2;
    }
    for (;;) {
        ptrace(PTRACE_CONT, pid, 0, 0);
        if (waitpid(pid, &st, 0) != pid)
            return -3;
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP) {
            errno = 0;
            *dr6 = ptrace(PTRACE_PEEKUSER, pid, DR_OFF(6), 0);
            if (++traps > 10) { /* a breakpoint that fires forever */
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
        }
    }
    return traps;
}

static void writes(void)
{
    for (int i = 0; i < 3; i++)
        watched = i + 1;
}

static void calls(void)
{
    target();
    target();
}

static int port_reads_ones(int use_iopl, unsigned short port)
{
    int st;
    pid_t pid = fork();
    if (pid == 0) {
        if (use_iopl ? iopl(3) : ioperm(port, 1, 1)) {
            perror("ABITEST: ioperm/iopl");
            _exit(2);
        }
        unsigned char v = inb(port);
        outb(0x5a, port);
        _exit(v == 0xff ? 0 : 3);
    }
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

int main(void)
{
    unsigned long dr6 = 0;
    int n;

    setvbuf(stdout, NULL, _IOLBF, 0);

    /* DR7: L0, RW0 = 01 (writes), LEN0 = 11 (4 bytes). */
    n = traced(writes, 0, (unsigned long)&watched, 1UL | 1UL << 16 | 3UL << 18, &dr6);
    printf("ABITEST: watch %s: fired %d times (want 3), last dr6 %#lx\n", n == 3 && (dr6 & 1) ? "ok" : "FAIL", n, dr6);
    /* DR7: L1, RW1 = 00 (execution), LEN1 = 00. */
    dr6 = 0;
    n = traced(calls, 1, (unsigned long)target, 1UL << 2, &dr6);
    printf("ABITEST: break %s: fired %d times (want 2), last dr6 %#lx\n", n == 2 && (dr6 & 2) ? "ok" : "FAIL", n, dr6);
    n = port_reads_ones(0, 0x2e8);
    printf("ABITEST: ioperm %s: inb(0x2e8) %s\n", n == 0 ? "ok" : "FAIL",
           n == 0 ? "read all ones" : n < 0 ? strsignal(-n) : n == 3 ? "not all ones" : "refused");
    n = port_reads_ones(1, 0x2ec);
    printf("ABITEST: iopl %s: inb(0x2ec) %s\n", n == 0 ? "ok" : "FAIL",
           n == 0 ? "read all ones" : n < 0 ? strsignal(-n) : n == 3 ? "not all ones" : "refused");
    return 0;
}
