#!/usr/bin/env python3
"""Reassembles every tensor of a libckpt checkpoint (format version 1 or 2) with h5py and numpy
only, following formats/SPEC.md (no libckpt code). Also verifies every piece's XXH3-64 checksum when the
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


def pieces_of(ext, itemsize, piece_bytes):
    """SPEC section 5: the piece dim p and rows per piece of a box with extents ext."""
    n = len(ext)
    if n == 0:
        return 0, 1
    slab, p = itemsize, n - 1
    for d in range(n - 1, 0, -1):
        nxt = slab * ext[d]
        if nxt > piece_bytes or ext[d] == 0:
            break
        slab, p = nxt, d - 1
    return p, max(1, min(ext[p], piece_bytes // slab))


def piece_checksums(data, piece_dim, piece_len):
    """The pieces of a box's row-major array, in order, and their XXH3-64."""
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


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def boxes_v2(ix, t, rows):
    """SPEC 3.2/3.3: the saved boxes of tensor row t as (offset, extent, writer, j, slot)."""
    nd = int(t['ndim'])
    if int(t['sharding']) == 1:  # explicit rows
        for j, r in enumerate(rows[t['first_row']: t['first_row'] + t['nboxes']]):
            yield ([int(x) for x in r['offset'][:nd]], [int(x) for x in r['extent'][:nd]], int(r['writer']), j,
                   int(t['first_piece']) + int(r['first_piece']))
        return
    shape = [int(x) for x in t['shape'][:nd]]
    chunk = [int(x) for x in t['chunk'][:nd]]
    ncells = [(s + c - 1) // c if s else 0 for s, c in zip(shape, chunk)]
    for j, cell in enumerate(np.ndindex(*ncells) if nd else [()]):
        off = [c * k for c, k in zip(cell, chunk)]
        ext = [min(k, s - o) for k, s, o in zip(chunk, shape, off)]
        writer = int(t['writer0']) + sum(c * int(s) for c, s in zip(cell, t['stride'][:nd]))
        yield off, ext, writer, j, int(t['first_piece']) + j * int(t['piece_stride'])
    if int(t['nboxes']) != (int(np.prod(ncells)) if nd else 1):
        raise AssertionError(f"{text(t['name'])}: the grid has another box count than nboxes")


def file_of(ix, layout, writer, groups):
    """SPEC 1: the data file a writer's boxes are in."""
    if layout == 'shared':
        return 'data.h5'
    if layout == 'file-per-group':
        for g in groups:
            if g['first_rank'] <= writer < g['first_rank'] + g['nranks']:
                return f"group-{int(g['group']):05d}.h5"
        raise AssertionError(f'writer {writer} is in no group')
    return f'rank-{writer:05d}.h5'


def load(ckpt, verify=False):
    with open(f'{ckpt}/COMMITTED') as m:
        lines = m.read().split('\n')
    assert lines[0] == 'ckpt-commit', 'not a commit marker'
    ix = h5py.File(f'{ckpt}/index.h5', 'r')
    assert text(ix.attrs['format']) == 'ckpt'
    version = int(ix.attrs['format_version'])
    assert version in (1, 2), f'unknown format version {version}'
    layout = text(ix.attrs['layout'])
    shared = layout == 'shared'
    piece_bytes = int(ix.attrs['piece_bytes'])
    tensors, rows = ix['index/tensors'][...], ix['index/boxes'][...]
    groups = ix['index/groups'][...] if 'groups' in ix['index'] else []
    if version == 1:
        sums = ix['index/checksums'][...]
        files = [text(f) for f in ix['index/files'][...]]
    out, opened = {}, {}

    def h5(name):
        if name not in opened:
            opened[name] = h5py.File(f'{ckpt}/{name}', 'r')
        return opened[name]

    for t in tensors:
        name = text(t['name'])
        nd = int(t['ndim'])
        shape = tuple(int(x) for x in t['shape'][:nd])
        arr = np.empty(shape, NP[text(t['dtype'])])
        seen = 0
        if version == 1:
            boxes = [([int(x) for x in b['offset'][:nd]], [int(x) for x in b['extent'][:nd]], b)
                     for b in rows[t['first_box']: t['first_box'] + t['nboxes']]]
        else:
            boxes = [(o, e, (w, j, slot)) for o, e, w, j, slot in boxes_v2(ix, t, rows)]
        for off, ext, info in boxes:
            sl = tuple(slice(o, o + e) for o, e in zip(off, ext))
            if version == 1:
                fname, dsname = files[info['file']], text(info['dataset'])
            else:
                writer, j, slot = info
                fname = file_of(ix, layout, writer, groups)
                dsname = f'/tensors/{name}' if shared else f"/boxes/{int(t['first_box']) + j}"
            f = h5(fname)
            ds = f[dsname]
            # file-per-rank/-group: the dataset is the box; shared: the box is a region of it
            data = ds[sl] if shared else ds[...]
            if verify:
                if version == 1:
                    p, plen = int(info['piece_dim']), int(info['piece_len'])
                    want = [int(x) for x in sums[info['first_piece']: info['first_piece'] + info['npieces']]]
                else:
                    p, plen = pieces_of(ext, arr.itemsize, piece_bytes)
                    first = slot if shared else int(ds.attrs['first_piece'])
                    got_n = len(piece_checksums(data, p, plen))
                    want = [int(x) for x in f['checksums'][first: first + got_n]]
                got = piece_checksums(data, p, plen)
                assert got == want, f'{name}: checksum mismatch in {fname}:{dsname}'
            arr[sl] = data
            seen += int(np.prod(ext)) if nd else 1
        assert seen == arr.size, f'{name}: boxes cover {seen} of {arr.size} elements'
        if shared:
            # shared layout: the whole tensor is also one plain dataset (SPEC section 4.2)
            direct = h5('data.h5')[f'tensors/{name}'][...]
            assert direct.dtype == arr.dtype and direct.tobytes() == arr.tobytes(), f'{name}: f[name][...] differs'
        out[name] = (text(t['dtype']), arr)
    for f in opened.values():
        f.close()
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
