/*
 * smpstress: a parallel workload for an SMP guest, run by the acceptance
 * initramfs (ci/initramfs/init-test) when the guest has several CPUs.
 *
 *   smpstress SECONDS
 *
 * For every online CPU, pinned there for SECONDS:
 *  - a process forking and exec'ing /bin/true and checking its status;
 *  - a process passing numbered messages through pipes to a partner pinned
 *    to the next CPU, which sends them back (checked in order);
 *  - a thread of one shared process mapping 1 MiB, writing a pattern into
 *    every page, reading it back and unmapping it, so that the kernel shoots
 *    down TLB entries on the other CPUs running the same mm; the threads also
 *    bump their own counter in a shared page the others read.
 * Prints one line per worker and "smpstress: ok" (exit 0) or the first error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 64
#define MAP_BYTES (1 << 20)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0) {
        printf("smpstress: FAIL: pinning to cpu %d: %s\n", cpu, strerror(errno));
        exit(1);
    }
}

static void fail(const char *what, int cpu, long i)
{
    printf("smpstress: FAIL: %s on cpu %d at iteration %ld (%s)\n", what, cpu, i, strerror(errno));
    fflush(stdout);
    _exit(1);
}

static void forkexec_worker(int cpu, double end)
{
    pin(cpu);
    long n = 0;
    while (now() < end) {
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (p < 0)
            fail("fork", cpu, n);
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail("exec /bin/true", cpu, n);
        n++;
    }
    printf("smpstress: cpu %d: %ld fork+exec\n", cpu, n);
}

static void pipe_worker(int cpu, int partner, double end)
{
    int to[2], from[2];
    if (pipe(to) || pipe(from))
        fail("pipe", cpu, 0);
    pid_t echo = fork();
    if (echo == 0) {
        pin(partner);
        close(to[1]);
        close(from[0]);
        uint64_t v;
        while (read(to[0], &v, sizeof v) == sizeof v)
            if (write(from[1], &v, sizeof v) != sizeof v)
                _exit(1);
        _exit(0);
    }
    pin(cpu);
    close(to[0]);
    close(from[1]);
    uint64_t i = 0, back;
    while (now() < end) {
        if (write(to[1], &i, sizeof i) != sizeof i)
            fail("pipe write", cpu, (long)i);
        if (read(from[0], &back, sizeof back) != sizeof back || back != i)
            fail("pipe reply", cpu, (long)i);
        i++;
    }
    close(to[1]);
    int st;
    waitpid(echo, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail("pipe partner", partner, (long)i);
    printf("smpstress: cpu %d -> cpu %d: %lu pipe round trips\n", cpu, partner, (unsigned long)i);
}

struct thread_arg {
    int cpu, ncpu;
    double end;
    long maps;
    int failed;
};

static volatile uint64_t *shared_counters;

static void *mmap_thread(void *p)
{
    struct thread_arg *a = p;
    pin(a->cpu);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t last_seen[MAX_CPUS] = {0};
    while (now() < a->end) {
        uint8_t *m = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            a->failed = 1;
            return NULL;
        }
        uint64_t tag = ((uint64_t)a->cpu << 48) | (uint64_t)a->maps;
        for (long off = 0; off < MAP_BYTES; off += page)
            *(uint64_t *)(m + off) = tag ^ (uint64_t)off;
        for (long off = 0; off < MAP_BYTES; off += page)
            if (*(uint64_t *)(m + off) != (tag ^ (uint64_t)off)) {
                a->failed = 2;
                return NULL;
            }
        if (munmap(m, MAP_BYTES) != 0) {
            a->failed = 3;
            return NULL;
        }
        a->maps++;
        __atomic_store_n(&shared_counters[a->cpu], (uint64_t)a->maps, __ATOMIC_RELEASE);
        /* The others' counters only go up. */
        for (int c = 0; c < a->ncpu; c++) {
            uint64_t v = __atomic_load_n(&shared_counters[c], __ATOMIC_ACQUIRE);
            if (v < last_seen[c]) {
                a->failed = 4;
                return NULL;
            }
            last_seen[c] = v;
        }
    }
    return NULL;
}

static void mmap_workers(int ncpu, double end)
{
    shared_counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (shared_counters == MAP_FAILED)
        fail("mmap shared page", 0, 0);
    pthread_t t[MAX_CPUS];
    struct thread_arg a[MAX_CPUS];
    for (int c = 0; c < ncpu; c++) {
        a[c] = (struct thread_arg){.cpu = c, .ncpu = ncpu, .end = end};
        if (pthread_create(&t[c], NULL, mmap_thread, &a[c]) != 0)
            fail("pthread_create", c, 0);
    }
    static const char *why[] = {"", "mmap", "pattern read back wrong", "munmap", "a counter went back"};
    int bad = 0;
    for (int c = 0; c < ncpu; c++) {
        pthread_join(t[c], NULL);
        if (a[c].failed) {
            printf("smpstress: FAIL: thread on cpu %d: %s after %ld maps\n", c, why[a[c].failed], a[c].maps);
            bad = 1;
        } else {
            printf("smpstress: cpu %d: %ld x 1 MiB mmap+touch+munmap in a shared mm\n", c, a[c].maps);
        }
    }
    fflush(stdout);
    _exit(bad);
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1 || ncpu > MAX_CPUS) {
        printf("smpstress: FAIL: %d CPUs online\n", ncpu);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("smpstress: %d CPUs, %d s\n", ncpu, seconds);
    double end = now() + seconds;
    pid_t kids[3 * MAX_CPUS];
    int n = 0;
    for (int c = 0; c < ncpu; c++) {
        if ((kids[n] = fork()) == 0) {
            forkexec_worker(c, end);
            _exit(0);
        }
        n++;
        if ((kids[n] = fork()) == 0) {
            pipe_worker(c, (c + 1) % ncpu, end);
            _exit(0);
        }
        n++;
    }
    if ((kids[n] = fork()) == 0)
        mmap_workers(ncpu, end);
    n++;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    printf(bad ? "smpstress: FAIL\n" : "smpstress: ok\n");
    return bad;
}
