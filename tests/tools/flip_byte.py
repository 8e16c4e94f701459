"""flip_byte.py FILE TENSOR PIECE -- flips one byte in the middle of HDF5 chunk PIECE of the dataset
of TENSOR in data file FILE, leaving HDF5's own metadata intact, so that only the checksums (or the
decompressor) can notice. The dataset is the one whose 'tensor' attribute names TENSOR (file-per-rank
layout, SPEC 4.1) or /tensors/TENSOR (shared layout, SPEC 4.2). Prints the dataset."""
import sys

import h5py

path, tensor, piece = sys.argv[1], sys.argv[2], int(sys.argv[3])
found = []
with h5py.File(path, "r") as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.attrs.get("tensor") in (tensor, tensor.encode()):
            found.append(name)
    f.visititems(visit)
    if not found and f"tensors/{tensor}" in f:
        found.append(f"tensors/{tensor}")
    if len(found) != 1:
        sys.exit(f"{path}: {len(found)} datasets of tensor {tensor!r}")
    info = f[found[0]].id.get_chunk_info(piece)
with open(path, "r+b") as g:
    at = info.byte_offset + info.size // 2
    g.seek(at)
    b = g.read(1)
    g.seek(at)
    g.write(bytes([b[0] ^ 0x5A]))
print("/" + found[0])
