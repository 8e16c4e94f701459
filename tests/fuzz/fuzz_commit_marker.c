/* fuzz_commit_marker.c -- the COMMITTED marker parser (every reader runs it on a file of the
 * checkpoint directory: untrusted) on arbitrary bytes: no crash, no read past the input, and a
 * marker it accepts formats back to text it parses to the same values. */
#include "commit.h"
#include "kvtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckpt_commit_marker m, again;
    char why[256], text[256];
    if (ckpt_commit_marker_parse((const char *)data, size, &m, why, sizeof why) != 0) {
        if (!why[0] || strlen(why) >= sizeof why)
            abort(); /* a refusal always says why */
        return 0;
    }
    if (m.format_version < 1 || size > CKPT_KV_MAX)
        abort();
    int n = ckpt_commit_marker_format(&m, text, sizeof text);
    if (n <= 0 || ckpt_commit_marker_parse(text, (size_t)n, &again, why, sizeof why) != 0 ||
        again.format_version != m.format_version || again.index_xxh3 != m.index_xxh3)
        abort();
    return 0;
}
