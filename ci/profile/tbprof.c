/*
 * A QEMU TCG plugin for ci/profile.sh: counts how often each translation
 * block runs and writes, when QEMU exits, one line per block to the file
 * named by its "out" argument: "<virtual address> <instructions> <runs>"
 * (hex, decimal, decimal). Under -icount shift=0 the instructions times the
 * runs, summed by function, are where the virtual time went.
 *
 *   -plugin libtbprof.so,out=FILE
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

typedef struct {
    uint64_t vaddr;
    size_t insns;
    struct qemu_plugin_scoreboard *runs;
} Block;

static GHashTable *blocks; /* a set of Blocks, keyed by (vaddr, insns) */
static GMutex lock;
static char *out_path;

static guint block_hash(gconstpointer k)
{
    const Block *b = k;
    return (guint)(b->vaddr ^ (b->vaddr >> 32) ^ ((uint64_t)b->insns << 20));
}

static gboolean block_equal(gconstpointer a, gconstpointer b)
{
    const Block *x = a, *y = b;
    return x->vaddr == y->vaddr && x->insns == y->insns;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    Block key = { .vaddr = qemu_plugin_tb_vaddr(tb), .insns = qemu_plugin_tb_n_insns(tb) };
    Block *b;

    g_mutex_lock(&lock);
    b = g_hash_table_lookup(blocks, &key);
    if (!b) {
        b = g_new0(Block, 1);
        *b = key;
        b->runs = qemu_plugin_scoreboard_new(sizeof(uint64_t));
        g_hash_table_insert(blocks, b, b);
    }
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
        tb, QEMU_PLUGIN_INLINE_ADD_U64,
        qemu_plugin_scoreboard_u64(b->runs), 1);
}

static void write_block(gpointer key, gpointer value, gpointer file)
{
    Block *b = value;
    uint64_t runs = qemu_plugin_u64_sum(qemu_plugin_scoreboard_u64(b->runs));

    if (runs) {
        fprintf(file, "%" PRIx64 " %zu %" PRIu64 "\n", b->vaddr, b->insns, runs);
    }
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    FILE *f = fopen(out_path, "w");

    if (!f) {
        qemu_plugin_outs("tbprof: cannot write the output file\n");
        return;
    }
    g_hash_table_foreach(blocks, write_block, f);
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=")) {
            out_path = g_strdup(argv[i] + 4);
        }
    }
    if (!out_path) {
        fprintf(stderr, "tbprof: needs out=FILE\n");
        return -1;
    }
    blocks = g_hash_table_new(block_hash, block_equal);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
