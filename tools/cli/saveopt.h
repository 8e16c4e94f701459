/* saveopt.h -- how the writing tools (shard-reshard, shard-merge) spell the options of the
 * checkpoint they write: the layout ("file-per-rank" or "shared"), the compression ("none",
 * "zstd" or "zstd:LEVEL") and the checksum piece size that keeps their data buffers within a
 * memory budget (--max-memory). */
#ifndef CKPT_TOOLS_SAVEOPT_H
#define CKPT_TOOLS_SAVEOPT_H

#include <ckpt.h>

#include <stddef.h>
#include <stdint.h>

/* Default --max-memory. */
#define SAVEOPT_DEFAULT_BUDGET (256LL << 20)
/* Smallest --max-memory accepted. */
#define SAVEOPT_MIN_BUDGET (4LL << 10)
/* The largest piece the tools choose (the library's default piece size). */
#define SAVEOPT_MAX_PIECE (4LL << 20)
/* The smallest piece the library accepts. */
#define SAVEOPT_MIN_PIECE 64LL

/* Ranks per file of the file-per-group layout when --layout group names no K. */
#define SAVEOPT_GROUP_SIZE 8

/* "file-per-rank" (also "per-rank"), "shared", or "file-per-group" / "group" with an optional
 * ":K" (ranks per file, default SAVEOPT_GROUP_SIZE) into o->layout / o->group_size; 0 when
 * unknown. */
int saveopt_parse_layout(const char *s, ckpt_save_options *o);

/* The layout as --layout spells it ("file-per-rank", "shared", "group:8"). */
char *saveopt_layout_str(char *buf, size_t size, const ckpt_save_options *o);

/* "none", "zstd" (the library's default level) or "zstd:LEVEL" (a decimal int, negative for
 * zstd's fast levels) into o->compress / o->level; 0 when malformed. Whether the level is one
 * zstd knows is checked by saveopt_check. */
int saveopt_parse_compress(const char *s, ckpt_save_options *o);

/* Asks the library whether it accepts the options (zstd level, piece size): opens and abandons
 * a writer, touching no file. 0 when accepted; otherwise -1 with the reason in ckpt_errmsg(). */
int saveopt_check(const char *path, const ckpt_save_options *o);

/* The piece size for a memory budget: budget / divisor, clamped to [SAVEOPT_MIN_PIECE,
 * SAVEOPT_MAX_PIECE]. A tool picks the divisor so that its buffers (a multiple of one piece)
 * stay well inside the budget. */
int64_t saveopt_piece_bytes(int64_t budget, int64_t divisor);

/* "none", or "zstd:LEVEL" as the index's compression attribute spells it (without the
 * "+shuffle" suffix). Returns buf. */
char *saveopt_compress_str(char *buf, size_t size, const ckpt_save_options *o);

#endif
