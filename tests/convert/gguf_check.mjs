// gguf_check.mjs -- shard-convert's GGUF files read by an independent parser, @huggingface/gguf
// (installed by scripts/setup.sh into tests/convert/node/). Usage:
//   node gguf_check.mjs F32.gguf F16.gguf Q8_0.gguf L H C T STEP MANIFEST.json
// The three exports of one checkpoint: checks the format version, every key with its type and
// value, every tensor's name, ggml shape and type; decodes the data here (f16 by hand, q8_0 blocks
// by hand) and checks them against the f32 file: f16 is the round-to-nearest-even of f32, q8_0 is
// bit for bit ggml's reference quantisation and within its error bound. MANIFEST gets the f32
// tensors' byte ranges for the check against the checkpoint itself (check_gguf.py).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "node", "package.json"));
const { gguf, GGUFValueType, GGMLQuantizationType } = await import(require.resolve("@huggingface/gguf"));

const [f32Path, f16Path, q8Path, L, H, C, T, STEP, manifestPath] = process.argv.slice(2);
const [nl, nh, ne, nt, step] = [L, H, C, T, STEP].map(Number);
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  checks++;
}

// GPT-2's byte-to-unicode table, written out again here
function byteTokens() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map = new Map(bs.map((b) => [b, b]));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!map.has(b)) map.set(b, 256 + n++);
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(map.get(b)));
}

const T_ = GGUFValueType;
function expectedKeys(fileType, source) {
  return {
    "general.alignment": [T_.UINT32, 32],
    "general.architecture": [T_.STRING, "gpt2"],
    "general.name": [T_.STRING, `shard-train GPT-2 step ${step}`],
    "general.file_type": [T_.UINT32, fileType],
    "general.quantization_version": [T_.UINT32, 2],
    "gpt2.context_length": [T_.UINT32, nt],
    "gpt2.embedding_length": [T_.UINT32, ne],
    "gpt2.block_count": [T_.UINT32, nl],
    "gpt2.feed_forward_length": [T_.UINT32, 4 * ne],
    "gpt2.attention.head_count": [T_.UINT32, nh],
    "gpt2.attention.layer_norm_epsilon": [T_.FLOAT32, Math.fround(1e-5)],
    "tokenizer.ggml.model": [T_.STRING, "gpt2"],
    "tokenizer.ggml.pre": [T_.STRING, "gpt-2"],
    "tokenizer.ggml.tokens": [T_.ARRAY, byteTokens(), T_.STRING],
    "tokenizer.ggml.token_type": [T_.ARRAY, new Array(256).fill(1), T_.INT32],
    "tokenizer.ggml.merges": [T_.ARRAY, [], T_.STRING],
    "tokenizer.ggml.bos_token_id": [T_.UINT32, 0],
    "tokenizer.ggml.eos_token_id": [T_.UINT32, 0],
    "tokenizer.ggml.add_bos_token": [T_.BOOL, false],
    "tokenizer.ggml.add_eos_token": [T_.BOOL, false],
    "ckpt.source": [T_.STRING, source],
    "ckpt.step": [T_.INT64, BigInt(step)],
  };
}

// name -> ggml shape [ne0, ne1] (the trainer's row-major [rows, cols] reversed) and whether 2-D
function expectedTensors() {
  const t = [["token_embd.weight", [ne, 256]], ["output.weight", [ne, 256]], ["position_embd.weight", [ne, nt]]];
  for (let l = 0; l < nl; l++) {
    const p = `blk.${l}.`;
    t.push([p + "attn_norm.weight", [ne]], [p + "attn_norm.bias", [ne]], [p + "attn_qkv.weight", [ne, 3 * ne]],
      [p + "attn_qkv.bias", [3 * ne]], [p + "attn_output.weight", [ne, ne]], [p + "attn_output.bias", [ne]],
      [p + "ffn_norm.weight", [ne]], [p + "ffn_norm.bias", [ne]], [p + "ffn_up.weight", [ne, 4 * ne]],
      [p + "ffn_up.bias", [4 * ne]], [p + "ffn_down.weight", [4 * ne, ne]], [p + "ffn_down.bias", [ne]]);
  }
  t.push(["output_norm.weight", [ne]], ["output_norm.bias", [ne]]);
  return t;
}

async function parse(path, type, fileType) {
  const r = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const md = r.typedMetadata;
  check(md.version.value === 3, `${path}: version ${md.version.value}`);
  const want = expectedKeys(fileType, md["ckpt.source"]?.value);
  const keys = Object.keys(md).filter((k) => !["version", "tensor_count", "kv_count"].includes(k));
  check(keys.length === Object.keys(want).length, `${path}: keys ${keys.join(",")}`);
  check(md.kv_count.value === BigInt(keys.length), `${path}: kv_count`);
  for (const [k, [vt, v, sub]] of Object.entries(want)) {
    check(k in md, `${path}: key ${k} missing`);
    check(md[k].type === vt, `${path}: ${k} type ${md[k].type}, expected ${vt}`);
    if (vt === T_.ARRAY) {
      check(md[k].subType === sub, `${path}: ${k} element type ${md[k].subType}`);
      check(JSON.stringify(md[k].value) === JSON.stringify(v), `${path}: ${k} values`);
    } else {
      check(md[k].value === v, `${path}: ${k} = ${md[k].value}, expected ${v}`);
    }
  }
  check(typeof md["ckpt.source"].value === "string" && md["ckpt.source"].value.length > 0, `${path}: ckpt.source`);
  const tensors = expectedTensors();
  check(r.tensorInfos.length === tensors.length, `${path}: ${r.tensorInfos.length} tensors`);
  check(md.tensor_count.value === BigInt(tensors.length), `${path}: tensor_count`);
  check(r.tensorDataOffset % 32n === 0n, `${path}: data offset ${r.tensorDataOffset} not aligned`);
  const byName = new Map(r.tensorInfos.map((t) => [t.name, t]));
  for (const [name, shape] of tensors) {
    const ti = byName.get(name);
    check(ti, `${path}: tensor ${name} missing`);
    check(ti.n_dims === shape.length && ti.shape.map(Number).join() === shape.join(), `${path}: ${name} shape ${ti.shape}`);
    const wantType = shape.length === 1 || name === "position_embd.weight" ? GGMLQuantizationType.F32 : type;
    check(ti.dtype === wantType, `${path}: ${name} type ${ti.dtype}, expected ${wantType}`);
    check(ti.offset % 32n === 0n, `${path}: ${name} offset ${ti.offset}`);
  }
  const buf = readFileSync(path);
  const data = (name) => {
    const ti = byName.get(name);
    const n = ti.shape.reduce((a, b) => a * Number(b), 1);
    const nbytes = ti.dtype === GGMLQuantizationType.F32 ? 4 * n : ti.dtype === GGMLQuantizationType.F16 ? 2 * n : (n / 32) * 34;
    const start = Number(r.tensorDataOffset + ti.offset);
    check(start + nbytes <= buf.length, `${path}: ${name} data past the end`);
    return { n, bytes: buf.subarray(start, start + nbytes), start };
  };
  return { r, byName, data, size: buf.length };
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// f32 -> f16 bits, round to nearest even (from the float's bits; an independent implementation)
function floatToHalf(x) {
  const f = new Float32Array([x]), u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000, exp = (u >>> 23) & 0xff, man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  let mant, shift;
  if (e <= 0) { // subnormal half
    if (e < -10) return sign;
    mant = man | 0x800000;
    shift = 14 - e;
  } else {
    mant = man;
    shift = 13;
  }
  let half = mant >>> shift;
  const rem = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
  if (rem > halfway || (rem === halfway && (half & 1))) half++;
  return e <= 0 ? sign | half : sign | ((e << 10) + half);
}

const f32 = await parse(f32Path, GGMLQuantizationType.F32, 0);
const f16 = await parse(f16Path, GGMLQuantizationType.F16, 1);
const q8 = await parse(q8Path, GGMLQuantizationType.Q8_0, 7);
const manifest = {};
let maxErr = 0;
for (const [name, shape] of expectedTensors()) {
  const a = f32.data(name);
  const x = new Float32Array(a.bytes.buffer.slice(a.bytes.byteOffset, a.bytes.byteOffset + a.bytes.length));
  manifest[name] = { offset: a.start, nbytes: a.bytes.length, shape };
  const two = shape.length === 2 && name !== "position_embd.weight";
  // f16: exactly the RNE of the f32 weights; 1-D and position_embd the f32 bytes themselves
  const b = f16.data(name);
  if (two) {
    for (let i = 0; i < a.n; i++) check(b.bytes.readUInt16LE(2 * i) === floatToHalf(x[i]), `f16 ${name}[${i}]`);
  } else {
    check(Buffer.compare(a.bytes, b.bytes) === 0, `f16 file: ${name} bytes differ from f32`);
  }
  // q8_0: blocks of 32: f16 d = fp16(amax / 127), q = round-half-away(x * (1/d)) in f32
  const c = q8.data(name);
  if (!two) {
    check(Buffer.compare(a.bytes, c.bytes) === 0, `q8_0 file: ${name} bytes differ from f32`);
    continue;
  }
  for (let blk = 0; blk < a.n / 32; blk++) {
    const o = blk * 34;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * blk + j]));
    const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
    const dh = c.bytes.readUInt16LE(o);
    check(dh === floatToHalf(d), `q8_0 ${name} block ${blk} scale`);
    const d16 = halfToFloat(dh);
    const bound = (0.5 + 127 / 2048) * d * (1 + 1e-6);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[32 * blk + j] * id);
      const q = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
      check(c.bytes.readInt8(o + 2 + j) === q, `q8_0 ${name} block ${blk} element ${j}`);
      const err = Math.abs(c.bytes.readInt8(o + 2 + j) * d16 - x[32 * blk + j]);
      check(err <= bound, `q8_0 ${name} block ${blk} element ${j}: error ${err} > ${bound}`);
      maxErr = Math.max(maxErr, err);
    }
  }
}
// output.weight is the tied embedding
check(Buffer.compare(f32.data("output.weight").bytes, f32.data("token_embd.weight").bytes) === 0, "output.weight != token_embd");
check(Buffer.compare(q8.data("output.weight").bytes, q8.data("token_embd.weight").bytes) === 0, "q8_0 output.weight");
writeFileSync(manifestPath, JSON.stringify(manifest));
console.log(`gguf_check: ${checks} checks passed (f32 ${f32.size} B, f16 ${f16.size} B, q8_0 ${q8.size} B; q8_0 max abs error ${maxErr.toExponential(3)})`);
