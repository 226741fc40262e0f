/**
 * Redaction: `redactText` throughput with 10, 1,000 and 100,000 registered secret values, on long
 * and on short texts, and what registering costs (time, approximate heap). Figures only, never
 * asserted. No Azurite: the redactor is in-process code.
 *
 * Run alone with `npx tsx bench/redact.ts`.
 */
import { performance } from 'node:perf_hooks';
import {
  clearRegisteredSecrets,
  redactText,
  registeredSecretCount,
  registerSecret,
} from '../src/lib/core/redact';

const COUNTS = [10, 1_000, 100_000];
const LONG_TEXT_CHARS = 1 << 20;
const EMBEDDED = 100;
const SHORT_LINES = 20_000;

export async function main(): Promise<void> {
  try {
    for (const count of COUNTS) runFor(count);
  } finally {
    clearRegisteredSecrets();
  }
}

function runFor(count: number): void {
  clearRegisteredSecrets();
  const random = seeded(count);
  // Mostly random base64 keys; one in ten a storage connection string (long shared prefix).
  const values = Array.from({ length: count }, (_, i) =>
    i % 10 === 0
      ? `DefaultEndpointsProtocol=https;AccountName=st${i};AccountKey=${base64(random, 64)};EndpointSuffix=core.windows.net`
      : base64(random, 44),
  );
  const memoryBefore = retainedBytes();
  const t = performance.now();
  for (const value of values) registerSecret(value);
  const registerMs = performance.now() - t;
  const memoryAfter = retainedBytes();

  const clean = logText(random, LONG_TEXT_CHARS);
  const dirty = embed(clean, values, EMBEDDED, random);
  const lines = Array.from({ length: 100 }, () => logText(random, 200));

  const cleanMs = median(() => redactText(clean));
  const dirtyMs = median(() => redactText(dirty));
  const shortMs = median(() => {
    for (let i = 0; i < SHORT_LINES; i++) redactText(lines[i % lines.length] as string);
  });
  const cleanOut = redactText(clean);
  const dirtyOut = redactText(dirty);
  const masked = dirtyOut.split('[REDACTED]').length - 1;
  console.log(
    `N = ${count.toLocaleString('en-US')} registered values (${registeredSecretCount()} fingerprints)`,
  );
  console.log(
    `  register                         ${ms(registerMs)}  = ${rate(count, registerMs)}/s  memory +${mib(memoryAfter - memoryBefore)}${exact ? '' : ' (approx.: no --expose-gc)'}`,
  );
  console.log(
    `  redactText, 1 MiB, no secret     ${ms(cleanMs)}  = ${mibPerS(clean.length, cleanMs)}${cleanOut === clean ? '' : '  (changed!)'}`,
  );
  console.log(
    `  redactText, 1 MiB, ${EMBEDDED} secrets  ${ms(dirtyMs)}  = ${mibPerS(dirty.length, dirtyMs)}  (${masked} masked)`,
  );
  console.log(
    `  redactText, 200-char lines       ${SHORT_LINES} in ${ms(shortMs)}  = ${rate(SHORT_LINES, shortMs)} lines/s`,
  );
}

const gc = (globalThis as { gc?: () => void }).gc;
const exact = typeof gc === 'function';

/** JS heap plus array buffers (the registry lives in typed arrays), after a collection when exposed. */
function retainedBytes(): number {
  gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Median wall time of 5 runs (after one warm-up run). */
function median(work: () => void): number {
  work();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    work();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[2] as number;
}

/** Log-like text: words, ids, URLs without credentials; nothing any rule masks. */
function logText(random: () => number, length: number): string {
  const words = [
    'rotating',
    'secret',
    'db-password',
    'in',
    'vault',
    'kv-prod',
    'consumer',
    'orders-api',
    'ok',
    'retry',
  ];
  let out = '';
  while (out.length < length) {
    const r = random();
    if (r < 0.05)
      out += ` https://kv-prod.vault.azure.net/secrets/s${Math.floor(random() * 1000)}/${hex(random, 32)}`;
    else if (r < 0.1)
      out += ` ${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`;
    else out += ` ${words[Math.floor(random() * words.length)]}`;
    if (random() < 0.02) out += '\n';
  }
  return out.slice(0, length);
}

function embed(text: string, values: string[], count: number, random: () => number): string {
  const parts: string[] = [];
  const step = Math.floor(text.length / count);
  for (let i = 0; i < count; i++) {
    parts.push(text.slice(i * step, (i + 1) * step), ` ${values[Math.floor(random() * values.length)]} `);
  }
  return parts.join('');
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

// Built with join: flat strings, so that flattening ropes does not blur the memory figure.
function base64(random: () => number, length: number): string {
  return Array.from({ length }, () => B64[Math.floor(random() * 64)]).join('');
}

function hex(random: () => number, length: number): string {
  return Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
}

/** mulberry32: the same texts and values on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ms(value: number): string {
  return `${value.toFixed(1).padStart(8)} ms`;
}

function rate(count: number, elapsedMs: number): string {
  return ((count * 1000) / elapsedMs).toFixed(0);
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function mibPerS(chars: number, elapsedMs: number): string {
  return `${((chars / (1 << 20)) * (1000 / elapsedMs)).toFixed(1)} Mchar/s`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
