#!/usr/bin/env python3
"""The f32 GGUF export against the checkpoint it came from, bit for bit, with no code of ours:
the checkpoint reassembled by h5py (formats/reassemble.py, every checksum verified), the GGUF byte
ranges from @huggingface/gguf (the manifest gguf_check.mjs writes), the trainer -> GGUF naming
spelled out here again. GGUF needs no transposition: ggml's [ne0, ne1] is the trainer's row-major
[rows, cols] with the dims reversed, so the bytes are the checkpoint's.

usage: check_gguf.py MANIFEST.json F32.gguf CKPT
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'formats'))
import reassemble  # noqa: E402

BLOCK = {'ln1.w': 'attn_norm.weight', 'ln1.b': 'attn_norm.bias', 'attn.qkv.w': 'attn_qkv.weight',
         'attn.qkv.b': 'attn_qkv.bias', 'attn.proj.w': 'attn_output.weight', 'attn.proj.b': 'attn_output.bias',
         'ln2.w': 'ffn_norm.weight', 'ln2.b': 'ffn_norm.bias', 'mlp.fc.w': 'ffn_up.weight', 'mlp.fc.b': 'ffn_up.bias',
         'mlp.proj.w': 'ffn_down.weight', 'mlp.proj.b': 'ffn_down.bias'}


def gguf_name(trainer):
    n = trainer[len('model/'):]
    if n in ('wte', 'wpe', 'lnf.w', 'lnf.b'):
        return {'wte': 'token_embd.weight', 'wpe': 'position_embd.weight', 'lnf.w': 'output_norm.weight',
                'lnf.b': 'output_norm.bias'}[n]
    _, layer, rest = n.split('.', 2)
    return f'blk.{layer}.{BLOCK[rest]}'


def main():
    manifest, path, ckpt = sys.argv[1:4]
    m = json.load(open(manifest))
    raw = open(path, 'rb').read()
    tensors, _ = reassemble.load(ckpt, verify=True)
    model = {k: v for k, v in tensors.items() if k.startswith('model/')}
    assert len(model) + 1 == len(m), (len(model), len(m))
    for name, (dtype, arr) in sorted(model.items()):
        g = m[gguf_name(name)]
        assert dtype == 'f32', (name, dtype)
        assert list(g['shape']) == list(reversed(arr.shape)), (name, g['shape'], arr.shape)
        got = np.frombuffer(raw[g['offset']:g['offset'] + g['nbytes']], dtype='<f4')
        assert got.tobytes() == np.ascontiguousarray(arr).tobytes(), f'{name}: bytes differ'
    wte = tensors['model/wte'][1]
    g = m['output.weight']
    assert raw[g['offset']:g['offset'] + g['nbytes']] == np.ascontiguousarray(wte).tobytes(), 'output.weight != wte'
    print(f'check_gguf: {len(model) + 1} tensors identical to {ckpt}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
