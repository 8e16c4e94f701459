/* data: bytes of text as tokens (vocabulary 256), a train/validation split, and a seeded counter-based
 * batch generator whose whole state is two integers (seed, counter) saved in checkpoints.
 *
 * Corpus: a text file, or a directory of text files: its regular files (symlinks followed, each file
 * once) in byte order of their names, concatenated, skipping names that start with '.' and the index
 * files of fortune databases (*.dat, *.u8). The last val_frac of the bytes (floor) is the validation
 * split, the rest the training split.
 *
 * Training batches. A step draws a fixed GLOBAL batch of B sequences of T+1 bytes (inputs = first T,
 * targets = last T). Global sequence g of the step whose generator counter is c starts at
 *     start = SplitMix64(key(seed) + (c + g) * golden) mod (n_train - T)
 * and the counter advances by B per step. Every rank computes the starts of its own sequences only, so
 * the global batch is the same at every world size; ranks take contiguous, balanced ranges of it
 * (data_split: B/N each, the first B%N ranks one more; ranks may get none).
 *
 * Validation: n_eval fixed sequences evenly spaced over the validation split (the same ones at every
 * evaluation, so values are comparable), split across ranks the same way. */
#ifndef TRAINER_DATA_H
#define TRAINER_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum data_status {
    DATA_OK = 0,
    DATA_ENOENT = -1,   /* missing or unreadable file / directory */
    DATA_EEMPTY = -2,   /* no bytes (or a directory without usable files) */
    DATA_ESHORT = -3,   /* a split shorter than T+1 bytes */
    DATA_ENOMEM = -4
} data_status;

typedef struct data_set {
    uint8_t *bytes;
    int64_t n;        /* all bytes */
    int64_t n_train;  /* [0, n_train) training, [n_train, n) validation */
    int64_t n_val;
    int T;            /* sequence length (context) */
    int nfiles;
} data_set;

/* Reads path (file or directory), splits off the last val_frac for validation, checks that the
 * training split (and the validation split when val_frac > 0) holds at least T+1 bytes. Fills err
 * with a message naming the path and the sizes on failure. */
int data_load(const char *path, double val_frac, int T, data_set *out, char *err, size_t errlen);
void data_free(data_set *d);

/* Balanced split of n items over nranks: rank gets [*first, *first + *count). */
void data_split(int64_t n, int nranks, int rank, int64_t *first, int64_t *count);

/* Training sequences g0 .. g0+nb-1 of the step with generator (seed, counter): tokens and targets,
 * (nb, T) each. */
void data_train_batch(const data_set *d, uint64_t seed, uint64_t counter, int64_t g0, int64_t nb, int32_t *tokens,
                      int32_t *targets);

/* Start offset of training sequence g (exposed for tests). */
int64_t data_train_start(const data_set *d, uint64_t seed, uint64_t counter, int64_t g);

/* Validation sequences j0 .. j0+nb-1 of n_eval. */
void data_val_batch(const data_set *d, int64_t n_eval, int64_t j0, int64_t nb, int32_t *tokens, int32_t *targets);

#endif /* TRAINER_DATA_H */
