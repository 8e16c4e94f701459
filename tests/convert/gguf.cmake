# GGUF (formats/src/gguf_*.c): writer, strict reader, codecs, byte tokens, checkpoint export
# (CMocka, with its ASan+UBSan twin); and the exported file read by an independent parser,
# @huggingface/gguf under Node (installed by scripts/setup.sh into tests/convert/node/).
ckptfmt_test(gguf SOURCES test_gguf.c)
