/* make_damaged -- the hostile checkpoints of damage.h on the command line, for the tool tests.
 *
 *   make_damaged SRC list              every class: "name<TAB>where<TAB>what"
 *   make_damaged SRC DIR CLASS [STEP]  makes the checkpoint of CLASS at DIR (absolute), then
 *                                      prints what the library says of it, one line each:
 *                                        open STATUS MESSAGE
 *                                        read STATUS MESSAGE     (verify on, when it opened)
 *                                        read-noverify STATUS MESSAGE
 *   SRC is the source tree (for tests/fixtures). */
#include "damage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *where_name(hx_where w)
{
    return w == HX_AT_OPEN ? "open" : w == HX_AT_READ ? "read" : w == HX_AT_VERIFY ? "verify" : "opens";
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "list")) {
        for (const hx_class *c = hx_classes; c->name; c++)
            printf("%s\t%s\t%s\n", c->name, where_name(c->where), c->what);
        return 0;
    }
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: make_damaged SRC list | make_damaged SRC DIR CLASS [STEP]\n");
        return 2;
    }
    hx_set_source_dir(argv[1]);
    const hx_class *c = hx_find(argv[3]);
    if (!c) {
        fprintf(stderr, "make_damaged: no class '%s'\n", argv[3]);
        return 2;
    }
    hx_make(argv[2], c, argc == 5 ? atoll(argv[4]) : 1);
    ckpt_reader *r = NULL;
    int rc = ckpt_reader_open(argv[2], &r);
    printf("open %s %s\n", ckpt_status_name(rc), rc ? ckpt_errmsg() : "");
    if (rc == CKPT_OK) {
        float buf[HX_W_BOX];
        int64_t off[2] = {0, 0}, ext[2] = {2, HX_W_COLS};
        for (int verify = 1; verify >= 0; verify--) {
            rc = ckpt_reader_read(r, "w", CKPT_F32, off, ext, buf, verify);
            printf("%s %s %s\n", verify ? "read" : "read-noverify", ckpt_status_name(rc), rc ? ckpt_errmsg() : "");
        }
        ckpt_reader_close(r);
    }
    return 0;
}
