/* The byte-level vocabulary as GPT-2 spells it: every byte is a token whose text is one code
 * point, so that BPE tokenizers (llama.cpp's "gpt2" model) see 256 distinct printable symbols. */
#include "ckptfmt.h"

#include <pthread.h>

static char tokens[256][3]; /* UTF-8 of code points < 0x200: at most 2 bytes + NUL */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Printable bytes map to the code point of the same value; the others, in byte order, to
 * 256, 257, ... */
static int printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void build(void)
{
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int cp = printable(b) ? b : next++;
        if (cp < 0x80) {
            tokens[b][0] = (char)cp;
            tokens[b][1] = 0;
        } else {
            tokens[b][0] = (char)(0xC0 | (cp >> 6));
            tokens[b][1] = (char)(0x80 | (cp & 0x3F));
            tokens[b][2] = 0;
        }
    }
}

const char *ckptfmt_gguf_byte_token(int b)
{
    if (b < 0 || b > 255)
        return NULL;
    pthread_once(&once, build);
    return tokens[b];
}
