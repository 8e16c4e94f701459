// safetensors_hub_check.mjs -- a shard-convert model directory read by the Hugging Face Hub's own
// safetensors parser, parseSafetensorsMetadata of @huggingface/hub (installed by scripts/setup.sh
// into tests/convert/node/; the code behind the Hub's parameter counts). The directory is served
// to it as a Hub repository through its `fetch` parameter (HEAD and ranged GET of
// /<repo>/{raw,resolve}/main/<file>), so it reads exactly what it would read from the Hub: the
// single file or model.safetensors.index.json and every shard's header, and config.json for the
// parameter count. Usage:
//   node safetensors_hub_check.mjs DIR DTYPE SHARDED L C T V
// DTYPE F32|F16|BF16; SHARDED 0|1. Checks the form found, every GPT-2 tensor's name, shape and
// dtype (Hugging Face names, Conv1D layout), no other tensor, __metadata__.format = "pt", and the
// parameter count per dtype.
import { existsSync, openSync, readSync, closeSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "node", "package.json"));
const { parseSafetensorsMetadata } = await import(require.resolve("@huggingface/hub"));

const [dir, dtype, shardedArg, L, C, T, V] = process.argv.slice(2);
const [nl, nc, nt, nv] = [L, C, T, V].map(Number);
const sharded = shardedArg === "1";
let checks = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  checks++;
}

// The model directory as a Hub repository. Only plain names inside DIR are served.
async function localFetch(input, init = {}) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init.method || "GET").toUpperCase();
  const headers = new Headers(init.headers || {});
  const m = url.pathname.match(/^\/local\/model\/(?:resolve|raw)\/main\/([^/]+)$/);
  const file = m ? join(dir, decodeURIComponent(m[1])) : null;
  if (!file || !existsSync(file))
    return new Response("not found", { status: 404, headers: { "x-error-code": "EntryNotFound" } });
  const size = statSync(file).size;
  const base = { "accept-ranges": "bytes", etag: `"${size}"` };
  if (method === "HEAD") return new Response(null, { status: 200, headers: { ...base, "content-length": String(size) } });
  const range = headers.get("range");
  if (!range) return new Response(readFileSync(file), { status: 200, headers: { ...base, "content-length": String(size) } });
  const r = /^bytes=(\d+)-(\d*)$/.exec(range);
  const a = Number(r[1]), b = r[2] === "" ? size - 1 : Math.min(Number(r[2]), size - 1);
  const buf = Buffer.alloc(b - a + 1);
  const fd = openSync(file, "r");
  readSync(fd, buf, 0, buf.length, a);
  closeSync(fd);
  return new Response(buf, {
    status: 206,
    headers: { ...base, "content-length": String(buf.length), "content-range": `bytes ${a}-${b}/${size}` },
  });
}

const res = await parseSafetensorsMetadata({ repo: "local/model", fetch: localFetch, computeParametersCount: true });
check(res.sharded === sharded, `sharded is ${res.sharded}, expected ${sharded}`);

// every tensor header the parser read, with the file it came from
const headers = sharded ? Object.entries(res.headers) : [["model.safetensors", res.header]];
const seen = new Map();
for (const [file, h] of headers) {
  check(h.__metadata__ && h.__metadata__.format === "pt", `${file}: __metadata__.format is "pt"`);
  for (const [name, info] of Object.entries(h)) {
    if (name === "__metadata__") continue;
    check(!seen.has(name), `${name} in one file only`);
    seen.set(name, info);
  }
}
if (sharded) {
  check(res.filepaths[0] === "model.safetensors.index.json", "the index is read first");
  check(res.filepaths.length === headers.length + 1, "every shard of the index read");
} else {
  check(JSON.stringify(res.filepaths) === '["model.safetensors"]', "the single file read");
}

// GPT-2 in Hugging Face's names and Conv1D layout ([in, out] weights), lm_head tied (absent)
const want = new Map([
  ["transformer.wte.weight", [nv, nc]],
  ["transformer.wpe.weight", [nt, nc]],
  ["transformer.ln_f.weight", [nc]],
  ["transformer.ln_f.bias", [nc]],
]);
for (let l = 0; l < nl; l++) {
  const p = `transformer.h.${l}.`;
  for (const ln of ["ln_1", "ln_2"]) {
    want.set(`${p}${ln}.weight`, [nc]);
    want.set(`${p}${ln}.bias`, [nc]);
  }
  want.set(`${p}attn.c_attn.weight`, [nc, 3 * nc]);
  want.set(`${p}attn.c_attn.bias`, [3 * nc]);
  want.set(`${p}attn.c_proj.weight`, [nc, nc]);
  want.set(`${p}attn.c_proj.bias`, [nc]);
  want.set(`${p}mlp.c_fc.weight`, [nc, 4 * nc]);
  want.set(`${p}mlp.c_fc.bias`, [4 * nc]);
  want.set(`${p}mlp.c_proj.weight`, [4 * nc, nc]);
  want.set(`${p}mlp.c_proj.bias`, [nc]);
}
check(seen.size === want.size, `${seen.size} tensors, expected ${want.size}`);
let params = 0;
for (const [name, shape] of want) {
  const info = seen.get(name);
  check(info !== undefined, `tensor ${name} present`);
  check(JSON.stringify(info.shape) === JSON.stringify(shape), `${name}: shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(shape)}`);
  check(info.dtype === dtype, `${name}: dtype ${info.dtype}, expected ${dtype}`);
  params += shape.reduce((a, b) => a * b, 1);
}
check(JSON.stringify(res.parameterCount) === JSON.stringify({ [dtype]: params }),
  `parameter count ${JSON.stringify(res.parameterCount)}, expected {"${dtype}":${params}}`);
console.log(`safetensors_hub_check: ${checks} checks passed (${seen.size} tensors in ${headers.length} file(s), ${params} parameters, ${dtype})`);
