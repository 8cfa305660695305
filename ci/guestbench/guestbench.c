/*
 * guestbench: micro-benchmarks of what a PV guest's kernel does through its
 * hypervisor. Prints one machine-readable line per metric:
 *   BENCH metric=NAME ns_per_op=N ops=N
 * Built static by ci/make-initramfs.sh and run as part of the guest's /init.
 * `guestbench --tsc` prints the TSC instead ("COCOON-BENCH: tsc N"): under
 * QEMU's instruction counting, the virtual nanoseconds since the machine
 * started, the same scale for a direct boot and one through Cocoon.
 * `guestbench --fork N` only forks, exits and waits N times (ci/profile.sh).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void report(const char *name, double t0, long ops)
{
    printf("BENCH metric=%s ns_per_op=%.0f ops=%ld\n", name, (now_ns() - t0) / ops, ops);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--tsc") == 0) {
        unsigned int lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        printf("COCOON-BENCH: tsc %llu\n", ((unsigned long long)hi << 32) | lo);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--fork") == 0) {
        /* ci/profile.sh: fork+exit+wait N times, nothing else. */
        for (long i = atol(argv[2]); i > 0; i--) {
            pid_t p = fork();
            if (p == 0)
                _exit(0);
            waitpid(p, NULL, 0);
        }
        return 0;
    }
    long scale = argc > 1 ? atol(argv[1]) : 1;
    double t0;
    long i, n;

    n = 100000 * scale;
    t0 = now_ns();
    for (i = 0; i < n; i++)
        syscall(SYS_getppid);
    report("null_syscall", t0, n);

    n = 4096 * scale; /* pages */
    char *m = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    t0 = now_ns();
    for (i = 0; i < n; i++)
        m[i * 4096] = 1;
    report("page_fault", t0, n);
    munmap(m, n * 4096);

    n = 200 * scale;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        waitpid(p, NULL, 0);
    }
    report("fork_exit_wait", t0, n);

    n = 100 * scale;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        waitpid(p, NULL, 0);
    }
    report("fork_exec", t0, n);

    int a[2], b[2];
    if (pipe(a) || pipe(b)) { perror("pipe"); return 1; }
    n = 5000 * scale;
    pid_t p = fork();
    if (p == 0) {
        char c;
        for (i = 0; i < n; i++) {
            if (read(a[0], &c, 1) != 1) _exit(1);
            if (write(b[1], &c, 1) != 1) _exit(1);
        }
        _exit(0);
    }
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        char c = 'x';
        if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1) { perror("pipe io"); return 1; }
    }
    report("pipe_pingpong", t0, n);
    waitpid(p, NULL, 0);

    n = 2000 * scale;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        char *q = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED) { perror("mmap"); return 1; }
        q[0] = 1;
        munmap(q, 1 << 20);
    }
    report("mmap_munmap", t0, n);

    /* Through the vDSO when the kernel's clocksource allows it (a Xen PV
     * kernel: the pvclock copy of VCPUOP_register_vcpu_time_memory_area),
     * else a system call. */
    struct timespec ts;
    long sink = 0;
    n = 100000 * scale;
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    }
    report("clock_gettime", t0, n);
    return sink == 42; /* keeps the loop; practically always 0 */
}
