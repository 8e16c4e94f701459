/* fuzz_lock_record.c -- the manager's lock record parser (ROOT/ckpt-manager.lock is read by every
 * job that opens the root: untrusted) on arbitrary bytes: no crash, bounded fields, and a record
 * it accepts formats back to text it parses to the same values and describes in one line. */
#include "kvtext.h"
#include "rootlock.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckpt_lock_record r, again;
    char why[256], text[CKPT_KV_MAX], who[1024];
    if (ckpt_lock_record_parse((const char *)data, size, &r, why, sizeof why) != 0)
        return 0;
    if (strlen(r.host) >= sizeof r.host || strlen(r.boot_id) >= sizeof r.boot_id || strlen(r.job) >= sizeof r.job ||
        r.pid <= 0 || r.since < 0)
        abort();
    int n = ckpt_lock_record_format(&r, text, sizeof text);
    if (n <= 0 || ckpt_lock_record_parse(text, (size_t)n, &again, why, sizeof why) != 0 ||
        strcmp(again.host, r.host) || strcmp(again.boot_id, r.boot_id) || strcmp(again.job, r.job) ||
        again.pid != r.pid || again.start != r.start || again.since != r.since)
        abort();
    ckpt_lock_record_describe(&r, who, sizeof who);
    if (!strstr(who, r.host))
        abort();
    return 0;
}
