#!/usr/bin/env python3
"""Reassembles every tensor of a libckpt checkpoint with h5py and numpy only, following
formats/SPEC.md (no libckpt code). Also verifies every piece's XXH3-64 checksum when the
`xxhash` Python module is available.

usage: reassemble.py CKPT_DIR [--npz OUT.npz] [--check-pattern]

For the shared layout it also reads every tensor directly as data.h5:/tensors/<name> and checks
that it equals the reassembled one. Compressed files need HDF5_PLUGIN_PATH to point at the
folder holding libh5zstd.so (build/hdf5-plugins).

--check-pattern compares the tensors against the deterministic pattern of tests/common/pattern.h
(the suite's catalogue), which proves the spec is enough to read a checkpoint bit-exactly.
"""
import sys

import h5py
import numpy as np

NP = {'f32': np.float32, 'f64': np.float64, 'f16': np.float16, 'bf16': np.uint16, 'i8': np.int8,
      'i16': np.int16, 'i32': np.int32, 'i64': np.int64, 'u8': np.uint8, 'bool': np.uint8}


def piece_checksums(data, piece_dim, piece_len):
    """SPEC section 5: the pieces of a box's row-major array, in order, and their XXH3-64."""
    import xxhash
    if data.ndim == 0:
        return [xxhash.xxh3_64_intdigest(data.tobytes())]
    out = []
    outer = data.shape[:piece_dim]
    for idx in np.ndindex(*outer):
        row = data[idx]
        for j in range(0, data.shape[piece_dim], piece_len):
            out.append(xxhash.xxh3_64_intdigest(np.ascontiguousarray(row[j:j + piece_len]).tobytes()))
    return out


def load(ckpt, verify=False):
    with open(f'{ckpt}/COMMITTED') as m:
        lines = m.read().split('\n')
    assert lines[0] == 'ckpt-commit', 'not a commit marker'
    ix = h5py.File(f'{ckpt}/index.h5', 'r')
    assert ix.attrs['format'] in (b'ckpt', 'ckpt')
    assert int(ix.attrs['format_version']) == 1, 'unknown format version'
    shared = ix.attrs['layout'] in (b'shared', 'shared')
    tensors, boxes = ix['index/tensors'][...], ix['index/boxes'][...]
    sums = ix['index/checksums'][...]
    files = [f.decode() if isinstance(f, bytes) else f for f in ix['index/files'][...]]
    out = {}
    for t in tensors:
        name = t['name'].decode()
        nd = int(t['ndim'])
        shape = tuple(int(x) for x in t['shape'][:nd])
        arr = np.empty(shape, NP[t['dtype'].decode()])
        seen = 0
        for b in boxes[t['first_box']: t['first_box'] + t['nboxes']]:
            sl = tuple(slice(int(o), int(o + e)) for o, e in zip(b['offset'][:nd], b['extent'][:nd]))
            with h5py.File(f"{ckpt}/{files[b['file']]}", 'r') as f:
                ds = f[b['dataset'].decode()]
                # file-per-rank: the dataset is the box; shared: the box is a region of it
                data = ds[...] if ds.shape == arr[sl].shape and not shared else ds[sl]
            if verify:
                got = piece_checksums(data, int(b['piece_dim']), int(b['piece_len']))
                want = [int(x) for x in sums[b['first_piece']: b['first_piece'] + b['npieces']]]
                assert got == want, f"{name}: checksum mismatch in {files[b['file']]}:{b['dataset'].decode()}"
            arr[sl] = data
            seen += int(np.prod([int(e) for e in b['extent'][:nd]])) if nd else 1
        assert seen == arr.size, f'{name}: boxes cover {seen} of {arr.size} elements'
        if ix.attrs['layout'] in (b'shared', 'shared'):
            # shared layout: the whole tensor is also one plain dataset (SPEC section 4.2)
            with h5py.File(f'{ckpt}/data.h5', 'r') as f:
                direct = f[f'tensors/{name}'][...]
            assert direct.dtype == arr.dtype and direct.tobytes() == arr.tobytes(), f'{name}: f[name][...] differs'
        out[name] = (t['dtype'].decode(), arr)
    attrs = {}
    def visit(key, obj):
        if isinstance(obj, h5py.Dataset):
            attrs[key] = (obj.attrs['type'], obj[()])
    if 'attributes' in ix:
        ix['attributes'].visititems(visit)
    return out, attrs


def pattern(tid, dtype, n):
    """tests/common/pattern.h, element by global linear index."""
    i = np.arange(n, dtype=np.int64)
    v = (((i * 37 + tid * 11) % 127) - 63) * 0.5
    k = (i * 37 + tid * 11) % 251
    if dtype in ('f32', 'f64', 'f16'):
        return v.astype(NP[dtype])
    if dtype == 'bf16':
        return (v.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return {'i8': lambda: (k - 125).astype(np.int8), 'i16': lambda: (k * 100 - 12500).astype(np.int16),
            'i32': lambda: (k * 100000 - 12500000).astype(np.int32),
            'i64': lambda: k * 10000000000 - 1250000000000 + i,
            'u8': lambda: k.astype(np.uint8), 'bool': lambda: (k & 1).astype(np.uint8)}[dtype]()


# the catalogue of tests/mpi/test_reshard.c, in its order (tensor id = position)
CATALOG = ['scalar', 'vec', 'mat', 'cube', 't4', 'rep', 'empty', 'blocks', 'big', 'dt/f32', 'dt/f64',
           'dt/f16', 'dt/bf16', 'dt/i8', 'dt/i16', 'dt/i32', 'dt/i64', 'dt/u8', 'dt/bool']


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    ckpt = sys.argv[1]
    try:
        import xxhash  # noqa: F401
        verify = True
    except ImportError:
        verify = False
        print('note: python module xxhash missing: checksums not verified')
    tensors, attrs = load(ckpt, verify)
    bad = 0
    for name, (dt, arr) in sorted(tensors.items()):
        line = f'{name:24s} {dt:5s} {str(arr.shape):16s}'
        if '--check-pattern' in sys.argv:
            want = pattern(CATALOG.index(name), dt, arr.size).reshape(arr.shape)
            ok = arr.dtype == want.dtype and arr.tobytes() == want.tobytes()
            bad += not ok
            line += ' bit-exact' if ok else ' DIFFERS'
        print(line)
    for k, (t, v) in sorted(attrs.items()):
        print(f'attribute {k} ({t.decode() if isinstance(t, bytes) else t}) = {v!r:.60}')
    if '--npz' in sys.argv:
        np.savez(sys.argv[sys.argv.index('--npz') + 1], **{n: a for n, (_, a) in tensors.items()})
    if '--check-pattern' in sys.argv:
        print(f'checksums {"verified" if verify else "not verified"}; {len(tensors) - bad} passed, {bad} failed')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
