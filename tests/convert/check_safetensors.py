#!/usr/bin/env python3
"""An independent reader of what shard-convert --to safetensors writes: the safetensors format
parsed by hand (struct + json, no safetensors package), the checkpoint read with h5py alone
(formats/reassemble.py), the Hugging Face GPT-2 naming and Conv1D layout spelled out here again,
and a numpy GPT-2 forward pass with Hugging Face's semantics (x @ W + b, c_attn split q|k|v,
heads as views, gelu_new, tied head).

usage:
  check_safetensors.py verify OUTDIR CKPT NAMES DTYPE   NAMES: hf-gpt2|as-is, DTYPE: f32|f16|bf16|stored
  check_safetensors.py forward OUTDIR PROMPT LOGITS     compares shard-generate --logits output
  check_safetensors.py same OUTDIR_A OUTDIR_B           the two exports hold the same tensors, bitwise
  check_safetensors.py malformed DIR                    writes one malformed file per class
Prints one line 'ok: ...' and exits 0, or raises.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'formats'))
import reassemble  # noqa: E402

# the reference implementation's Dtype order (its writer sorts by it, descending, then by name)
ORDER = ['BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16',
         'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64']
NPDT = {'F32': '<f4', 'F64': '<f8', 'F16': '<f2', 'BF16': '<u2', 'I8': 'i1', 'I16': '<i2', 'I32': '<i4',
        'I64': '<i8', 'U8': 'u1', 'BOOL': 'u1'}
SIZE = {'F32': 4, 'F64': 8, 'F16': 2, 'BF16': 2, 'I8': 1, 'I16': 2, 'I32': 4, 'I64': 8, 'U8': 1, 'BOOL': 1}
CKPT_TO_ST = {'f32': 'F32', 'f64': 'F64', 'f16': 'F16', 'bf16': 'BF16', 'i8': 'I8', 'i16': 'I16',
              'i32': 'I32', 'i64': 'I64', 'u8': 'U8', 'bool': 'BOOL'}


def parse(path):
    """The file by hand: (metadata, {name: (dtype, shape, bytes)}, names in header order)."""
    raw = open(path, 'rb').read()
    assert len(raw) >= 8
    (n,) = struct.unpack('<Q', raw[:8])
    assert n % 8 == 0, f'{path}: header length {n} not a multiple of 8'
    header = raw[8:8 + n]
    text = header.rstrip(b' ')
    assert text.startswith(b'{') and text.endswith(b'}'), 'header not an object padded with spaces'
    assert len(header) - len(text) < 8, 'more padding than needed'
    assert b', ' not in text and b': ' not in text, 'not compact JSON'
    pairs = json.loads(text, object_pairs_hook=lambda kv: kv)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), 'duplicate names'
    meta = None
    if keys and keys[0] == '__metadata__':
        meta = dict(pairs[0][1])
        pairs = pairs[1:]
    assert '__metadata__' not in [k for k, _ in pairs], '__metadata__ not first'
    data = raw[8 + n:]
    out, at, order = {}, 0, []
    for name, info in pairs:
        info = dict(info)
        assert list(info.keys()) == ['dtype', 'shape', 'data_offsets'], info.keys()
        b, e = info['data_offsets']
        assert b == at, f'{name}: starts at {b}, previous ended at {at}'
        nbytes = SIZE[info['dtype']] * int(np.prod(info['shape'], dtype=np.int64))
        assert e - b == nbytes, f'{name}: {e - b} bytes for {nbytes}'
        out[name] = (info['dtype'], tuple(info['shape']), data[b:e])
        order.append(name)
        at = e
    assert at == len(data), f'data end at {at}, file holds {len(data)}'
    # the reference writer's order: dtype descending, then name (byte order)
    want = sorted(order, key=lambda k: (-ORDER.index(out[k][0]), k.encode()))
    assert order == want, f'not in the reference order: {order[:5]}...'
    return meta, out, order


def hf_name(trainer):
    """model/<param> -> the Hugging Face GPT-2 name and whether Conv1D stores it transposed."""
    p = trainer[len('model/'):]
    outer = {'wte': 'transformer.wte.weight', 'wpe': 'transformer.wpe.weight',
             'lnf.w': 'transformer.ln_f.weight', 'lnf.b': 'transformer.ln_f.bias'}
    if p in outer:
        return outer[p], False
    _, layer, rest = p.split('.', 2)
    block = {'ln1.w': ('ln_1.weight', False), 'ln1.b': ('ln_1.bias', False),
             'attn.qkv.w': ('attn.c_attn.weight', True), 'attn.qkv.b': ('attn.c_attn.bias', False),
             'attn.proj.w': ('attn.c_proj.weight', True), 'attn.proj.b': ('attn.c_proj.bias', False),
             'ln2.w': ('ln_2.weight', False), 'ln2.b': ('ln_2.bias', False),
             'mlp.fc.w': ('mlp.c_fc.weight', True), 'mlp.fc.b': ('mlp.c_fc.bias', False),
             'mlp.proj.w': ('mlp.c_proj.weight', True), 'mlp.proj.b': ('mlp.c_proj.bias', False)}
    nm, tr = block[rest]
    return f'transformer.h.{layer}.{nm}', tr


def to_bf16_bits(f32):
    """Round to nearest, ties to even (finite values; NaN kept quiet)."""
    u = np.ascontiguousarray(f32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(f32)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def load_dir(outdir):
    """Every tensor of the model directory, and the files' metadata."""
    idx = os.path.join(outdir, 'model.safetensors.index.json')
    if os.path.exists(idx):
        index = json.load(open(idx))
        files = sorted(set(index['weight_map'].values()))
        assert list(index.keys()) == ['metadata', 'weight_map']
        assert list(index['weight_map'].keys()) == sorted(index['weight_map'].keys())
        k = len(files)
        assert files == [f'model-{i:05d}-of-{k:05d}.safetensors' for i in range(1, k + 1)], files
    else:
        index, files = None, ['model.safetensors']
    tensors, metas, sizes = {}, [], 0
    for f in files:
        meta, t, _ = parse(os.path.join(outdir, f))
        metas.append(meta)
        for name, v in t.items():
            assert name not in tensors
            tensors[name] = v
            sizes += len(v[2])
            if index:
                assert index['weight_map'][name] == f
    if index:
        assert set(index['weight_map']) == set(tensors)
        assert index['metadata']['total_size'] == sizes
    return tensors, metas, len(files)


def verify(outdir, ckpt, names, dtype):
    loaded, attrs = reassemble.load(ckpt, verify=True)
    src = {k: a for k, (_, a) in loaded.items()}
    kinds = {k: d for k, (d, _) in loaded.items()}
    step = int(attrs['step'][1]) if 'step' in attrs else None
    tensors, metas, nfiles = load_dir(outdir)
    for m in metas:
        want = {'format': 'pt', 'source': ckpt}
        if step is not None:
            want['step'] = str(step)
        assert m == want, (m, want)
    expect = {}
    for name, arr in src.items():
        if names == 'hf-gpt2':
            if not name.startswith('model/'):
                continue
            hf, tr = hf_name(name)
        else:
            hf, tr = name, False
        kind = kinds[name]
        a = arr
        if kind == 'bf16':
            a = (arr.astype(np.uint32) << 16).view(np.float32)
        if tr:
            a = np.ascontiguousarray(a.T)
        out_kind = kind if dtype == 'stored' or kind not in ('f32', 'f64', 'f16', 'bf16') else dtype
        if out_kind == 'bf16':
            bits = to_bf16_bits(a.astype(np.float32)) if kind != 'bf16' else (arr.T if tr else arr)
            data = np.ascontiguousarray(bits, dtype='<u2').tobytes()
        elif out_kind == 'f16':
            data = np.ascontiguousarray(a.astype(np.float32).astype('<f2')).tobytes()
        else:
            data = np.ascontiguousarray(a, dtype=NPDT[CKPT_TO_ST[out_kind]]).tobytes()
        expect[hf] = (CKPT_TO_ST[out_kind], a.shape, data)
    assert set(expect) == set(tensors), (sorted(set(expect) ^ set(tensors)))[:5]
    for name, (dt, shape, data) in expect.items():
        got = tensors[name]
        assert got[0] == dt, (name, got[0], dt)
        assert got[1] == tuple(shape), (name, got[1], shape)
        assert got[2] == data, f'{name}: bytes differ'
    if names == 'hf-gpt2':
        cfg = json.load(open(os.path.join(outdir, 'config.json')))
        conf = {k: int(attrs[f'config/{k}'][1]) for k in ('n_layer', 'n_head', 'n_embd', 'max_seq', 'vocab')}
        assert cfg['model_type'] == 'gpt2' and cfg['architectures'] == ['GPT2LMHeadModel']
        assert cfg['activation_function'] == 'gelu_new' and cfg['layer_norm_epsilon'] == 1e-5
        assert (cfg['n_layer'], cfg['n_head'], cfg['n_embd'], cfg['n_positions'], cfg['n_ctx'], cfg['vocab_size']) == \
            (conf['n_layer'], conf['n_head'], conf['n_embd'], conf['max_seq'], conf['max_seq'], conf['vocab'])
        assert cfg['tie_word_embeddings'] is True and 'lm_head.weight' not in tensors
        assert cfg['torch_dtype'] == {'f32': 'float32', 'f16': 'float16', 'bf16': 'bfloat16', 'stored': 'float32'}[dtype]
        assert cfg['bos_token_id'] == 0 and cfg['eos_token_id'] == 0
    print(f'ok: {len(tensors)} tensors in {nfiles} file(s) match {ckpt} ({names}, {dtype})')


def f32_of(t):
    dt, shape, data = t
    a = np.frombuffer(data, dtype=NPDT[dt]).reshape(shape)
    if dt == 'BF16':
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float64)


def forward(outdir, prompt, logits_file):
    """Hugging Face GPT-2's forward pass in numpy (float64) on the exported files."""
    cfg = json.load(open(os.path.join(outdir, 'config.json')))
    tensors, _, _ = load_dir(outdir)
    W = {k: f32_of(v) for k, v in tensors.items()}
    C, H, L = cfg['n_embd'], cfg['n_head'], cfg['n_layer']
    hs = C // H
    toks = list(prompt.encode()) or [10]
    T = len(toks)

    def ln(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg['layer_norm_epsilon']) * w + b

    def gelu_new(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

    x = W['transformer.wte.weight'][toks] + W['transformer.wpe.weight'][:T]
    mask = np.triu(np.ones((T, T), bool), 1)
    for l in range(L):
        p = f'transformer.h.{l}.'
        h = ln(x, W[p + 'ln_1.weight'], W[p + 'ln_1.bias'])
        qkv = h @ W[p + 'attn.c_attn.weight'] + W[p + 'attn.c_attn.bias']     # Conv1D: x W + b
        q, k, v = np.split(qkv, 3, axis=1)
        q, k, v = (z.reshape(T, H, hs).transpose(1, 0, 2) for z in (q, k, v))
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hs)
        att[:, mask] = -np.inf
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ W[p + 'attn.c_proj.weight'] + W[p + 'attn.c_proj.bias']
        h = ln(x, W[p + 'ln_2.weight'], W[p + 'ln_2.bias'])
        x = x + gelu_new(h @ W[p + 'mlp.c_fc.weight'] + W[p + 'mlp.c_fc.bias']) @ W[p + 'mlp.c_proj.weight'] + \
            W[p + 'mlp.c_proj.bias']
    x = ln(x, W['transformer.ln_f.weight'], W['transformer.ln_f.bias'])
    ref = x[-1] @ W['transformer.wte.weight'].T                                # tied head
    lines = [l.split() for l in open(logits_file) if not l.startswith('#')]
    got = np.array([float(l[1]) for l in lines])
    got_lp = np.array([float(l[2]) for l in lines])
    assert [int(l[0]) for l in lines] == list(range(len(ref)))
    ref_lp = ref - (ref.max() + np.log(np.exp(ref - ref.max()).sum()))
    err = np.abs(got - ref).max()
    err_lp = np.abs(got_lp - ref_lp).max()
    scale = np.abs(ref).max()
    assert err <= 1e-4 * max(1.0, scale), f'logits differ from the reference forward by {err}'
    assert err_lp <= 1e-4 * max(1.0, scale), f'log-probabilities differ by {err_lp}'
    assert int(np.argmax(got)) == int(np.argmax(ref))
    print(f'ok: the numpy Hugging Face GPT-2 forward agrees: max |logit diff| {err:.3g}, max |logprob diff| '
          f'{err_lp:.3g} over {len(ref)} tokens')


def same(a, b):
    ta, _, _ = load_dir(a)
    tb, _, _ = load_dir(b)
    assert set(ta) == set(tb)
    for k in ta:
        assert ta[k] == tb[k], f'{k} differs'
    print(f'ok: {len(ta)} tensors bitwise equal')


def malformed(d):
    os.makedirs(d, exist_ok=True)

    def img(header, data=b'', length=None):
        h = header.encode() if isinstance(header, str) else header
        return struct.pack('<Q', len(h) if length is None else length) + h + data

    def t(dt, shape, b, e):
        return {'dtype': dt, 'shape': shape, 'data_offsets': [b, e]}

    def hdr(entries):
        return json.dumps(entries, separators=(',', ':'))
    cases = {
        'short': b'\x08\0\0',
        'huge-header': struct.pack('<Q', 100000001) + b'{}',
        'past-end': struct.pack('<Q', 64) + b'{}      ',
        'json': img('{"a":'),
        'duplicate': img('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                         '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', bytes(8)),
        'dtype': img(hdr({'a': t('F128', [1], 0, 4)}), bytes(4)),
        'shape-mismatch': img(hdr({'a': t('F32', [2], 0, 4)}), bytes(4)),
        'overlap': img(hdr({'a': t('F32', [1], 0, 4), 'b': t('F32', [2], 2, 10)}), bytes(10)),
        'gap': img(hdr({'a': t('F32', [1], 0, 4), 'b': t('F32', [1], 8, 12)}), bytes(12)),
        'out-of-bounds': img(hdr({'a': t('F32', [2], 0, 8)}), bytes(4)),
        'trailing': img(hdr({'a': t('F32', [1], 0, 4)}), bytes(6)),
        'reversed': img(hdr({'a': t('F32', [1], 4, 0)}), bytes(4)),
    }
    for name, data in cases.items():
        open(os.path.join(d, name + '.safetensors'), 'wb').write(data)
    print(f'ok: {len(cases)} malformed files in {d}')


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'verify':
        verify(*sys.argv[2:6])
    elif cmd == 'forward':
        forward(*sys.argv[2:5])
    elif cmd == 'same':
        same(*sys.argv[2:4])
    elif cmd == 'malformed':
        malformed(sys.argv[2])
    else:
        sys.exit(f'unknown command {cmd}')
